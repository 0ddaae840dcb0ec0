//! The in-toto layout: the supply chain owner's signed plan of steps,
//! inspections, functionary keys and artifact rules, read and checked the
//! way in-toto 3.1.0's `Layout.read` checks it (so a layout it refuses as
//! malformed is refused here too).
//!
//! This module knows the layout's shape; it knows nothing of links, files or
//! how verification proceeds.

use super::rules::{Rule, parse_rule};
use crate::keys::PublicKey;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A functionary key as the layout lists it.
#[derive(Debug, Clone)]
pub struct LayoutKey {
    /// The key dict's own `keyid` field: the keyid signatures must carry.
    pub keyid: String,
    pub key: PublicKey,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub threshold: i64,
    pub pubkeys: Vec<String>,
    pub expected_command: Vec<String>,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Inspection {
    pub name: String,
    pub run: Vec<String>,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Layout {
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub expires: String,
    /// `expires` as seconds since the Unix epoch.
    pub expires_unix: i64,
    pub readme: String,
    /// Keyid (as the layout's `keys` object names it) → key.
    pub keys: BTreeMap<String, LayoutKey>,
    pub steps: Vec<Step>,
    pub inspect: Vec<Inspection>,
}

impl Layout {
    /// Reads the `signed` object of a layout. The error says what is wrong,
    /// naming the step or key.
    pub fn from_value(value: &Value) -> Result<Layout, String> {
        let obj = value.as_object().ok_or("the layout is not a JSON object")?;
        if obj.get("_type").and_then(Value::as_str) != Some("layout") {
            return Err("`_type` is not \"layout\"".into());
        }
        let expires = match obj.get("expires") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err("`expires` is missing or not a string".into()),
        };
        let expires_unix = parse_expires(&expires)
            .ok_or_else(|| format!("`expires` is {expires:?}, expected 'YYYY-MM-DDTHH:MM:SSZ'"))?;
        let readme = match obj.get("readme") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("`readme` is not a string".into()),
        };
        let keys = match obj.get("keys") {
            None => BTreeMap::new(),
            Some(Value::Object(keys)) => keys
                .iter()
                .map(|(keyid, dict)| {
                    check_hex(keyid).map_err(|e| format!("`keys`: {e}"))?;
                    let inner = dict.get("keyid").and_then(Value::as_str).ok_or_else(|| {
                        format!("`keys`: key {keyid} has no `keyid` field (in-toto needs it)")
                    })?;
                    let key = PublicKey::from_key_dict(dict)
                        .map_err(|e| format!("`keys`: key {keyid}: {e}"))?;
                    Ok((
                        keyid.clone(),
                        LayoutKey {
                            keyid: inner.to_owned(),
                            key,
                        },
                    ))
                })
                .collect::<Result<_, String>>()?,
            Some(_) => return Err("`keys` is not an object".into()),
        };
        let list = |name: &str| -> Result<Vec<Value>, String> {
            match obj.get(name) {
                Some(Value::Array(items)) => Ok(items.clone()),
                _ => Err(format!("`{name}` is missing or not a list")),
            }
        };
        let mut names = BTreeSet::new();
        let mut steps = Vec::new();
        for (i, item) in list("steps")?.iter().enumerate() {
            let step = Step::from_value(item).map_err(|e| format!("steps[{i}]: {e}"))?;
            if !names.insert(step.name.clone()) {
                return Err(format!(
                    "there is already a step named {:?}; names must be unique",
                    step.name
                ));
            }
            steps.push(step);
        }
        let mut inspect = Vec::new();
        for (i, item) in list("inspect")?.iter().enumerate() {
            let inspection =
                Inspection::from_value(item).map_err(|e| format!("inspect[{i}]: {e}"))?;
            if !names.insert(inspection.name.clone()) {
                return Err(format!(
                    "there is already a step or inspection named {:?}; names must be unique",
                    inspection.name
                ));
            }
            inspect.push(inspection);
        }
        Ok(Layout {
            expires,
            expires_unix,
            readme,
            keys,
            steps,
            inspect,
        })
    }
}

impl Step {
    fn from_value(value: &Value) -> Result<Step, String> {
        let obj = value.as_object().ok_or("not a JSON object")?;
        let name = name(obj)?;
        let within = |e: String| format!("step {name:?}: {e}");
        let threshold = match obj.get("threshold") {
            None => 1,
            Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or(1),
            Some(other) => return Err(within(format!("threshold {other} is not an integer"))),
        };
        let pubkeys = strings(obj, "pubkeys").map_err(within)?;
        for keyid in &pubkeys {
            check_hex(keyid).map_err(|e| within(format!("`pubkeys`: {e}")))?;
        }
        Ok(Step {
            threshold,
            pubkeys,
            expected_command: strings(obj, "expected_command").map_err(within)?,
            expected_materials: rules(obj, "expected_materials").map_err(within)?,
            expected_products: rules(obj, "expected_products").map_err(within)?,
            name,
        })
    }
}

impl Inspection {
    fn from_value(value: &Value) -> Result<Inspection, String> {
        let obj = value.as_object().ok_or("not a JSON object")?;
        let name = name(obj)?;
        let within = |e: String| format!("inspection {name:?}: {e}");
        Ok(Inspection {
            run: strings(obj, "run").map_err(within)?,
            expected_materials: rules(obj, "expected_materials").map_err(within)?,
            expected_products: rules(obj, "expected_products").map_err(within)?,
            name,
        })
    }
}

fn name(obj: &Map<String, Value>) -> Result<String, String> {
    obj.get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "`name` is missing or not a string".into())
}

/// A list of strings; absent means empty, as in in-toto's constructors.
fn strings(obj: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match obj.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{key}` holds {v}, not a string"))
            })
            .collect(),
        Some(other) => Err(format!("`{key}` is {other}, not a list")),
    }
}

fn rules(obj: &Map<String, Value>, key: &str) -> Result<Vec<Rule>, String> {
    match obj.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|rule| {
                let parts: Vec<String> = rule
                    .as_array()
                    .ok_or_else(|| format!("`{key}`: rule {rule} is not a list"))?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("`{key}`: rule {rule} holds a non-string"))
                    })
                    .collect::<Result<_, _>>()?;
                parse_rule(&parts).map_err(|e| format!("`{key}`: {e}"))
            })
            .collect(),
        Some(other) => Err(format!("`{key}` is {other}, not a list")),
    }
}

fn check_hex(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a hex keyid"))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (the only form in-toto 3.1.0 accepts) as Unix seconds.
pub fn parse_expires(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    if sec > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_unix(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_dates_round_trip_and_bad_forms_are_refused() {
        assert_eq!(parse_expires("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_expires("2000-03-01T00:00:00Z"), Some(951_868_800));
        for t in [0, 951_868_800, 1_798_761_599, 4_102_444_800] {
            assert_eq!(parse_expires(&format_unix(t)), Some(t));
        }
        for bad in [
            "2026-11-25",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00+00:00",
            "2026-02-30T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-11-25t10:00:00Z",
        ] {
            assert_eq!(parse_expires(bad), None, "{bad}");
        }
    }

    fn ed25519_key() -> Value {
        let key = crate::keys::PrivateKey::from_seed(&[7; 32]).public();
        let mut dict = key.key_dict(crate::keys::KeyIdFormat::Python);
        dict["keyid"] = json!(key.keyid(crate::keys::KeyIdFormat::Python));
        dict
    }

    fn layout(steps: Value, inspect: Value) -> Value {
        let key = ed25519_key();
        let keyid = key["keyid"].as_str().unwrap().to_owned();
        json!({"_type": "layout", "expires": "2030-01-01T00:00:00Z", "readme": "",
               "keys": {keyid: key}, "steps": steps, "inspect": inspect})
    }

    #[test]
    fn a_well_formed_layout_reads_with_defaults() {
        let l = Layout::from_value(&layout(
            json!([{"name": "build", "pubkeys": ["ab12"],
                    "expected_materials": [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "clone"]]}]),
            json!([{"name": "untar", "run": ["tar", "xf", "x.tar"]}]),
        ))
        .unwrap();
        assert_eq!(l.steps[0].threshold, 1);
        assert_eq!(l.steps[0].expected_materials.len(), 1);
        assert_eq!(l.inspect[0].run, ["tar", "xf", "x.tar"]);
        assert_eq!(l.keys.len(), 1);
    }

    #[test]
    fn malformed_layouts_name_the_problem() {
        let cases = [
            (json!([{"name": "a"}, {"name": "a"}]), json!([]), "unique"),
            (json!([{"name": "a"}]), json!([{"name": "a"}]), "unique"),
            (
                json!([{"name": "a", "threshold": "2"}]),
                json!([]),
                "threshold",
            ),
            (
                json!([{"name": "a", "pubkeys": ["xyz"]}]),
                json!([]),
                "hex keyid",
            ),
            (
                json!([{"name": "a", "expected_products": [["CREATE"]]}]),
                json!([]),
                "expected_products",
            ),
            (json!([{"threshold": 1}]), json!([]), "`name`"),
            (json!({}), json!([]), "`steps`"),
        ];
        for (steps, inspect, needle) in cases {
            let err = Layout::from_value(&layout(steps.clone(), inspect)).unwrap_err();
            assert!(err.contains(needle), "{steps}: {err}");
        }
        let mut no_keyid = layout(json!([]), json!([]));
        let keys = no_keyid["keys"].as_object_mut().unwrap();
        for key in keys.values_mut() {
            key.as_object_mut().unwrap().remove("keyid");
        }
        assert!(
            Layout::from_value(&no_keyid)
                .unwrap_err()
                .contains("no `keyid`")
        );
    }
}
