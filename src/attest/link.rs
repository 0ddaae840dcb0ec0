//! The link predicate (`https://in-toto.io/attestation/link/v0.3`): a
//! classic link as a statement, and back. As the predicate's specification
//! maps it: `_type` and `products` go (the subject is the products),
//! materials become ResourceDescriptors (name, digest); name, command,
//! byproducts and environment are kept as the link has them.

use super::{FieldError, LINK_PREDICATE, ResourceDescriptor, Statement, subjects};
use crate::link::{ArtifactMap, Byproducts, Link};
use serde_json::{Map, Value, json};

/// The link attestation of `link` (subject: its products).
pub fn statement(link: &Link) -> Statement {
    let signed = link.to_value();
    let mut predicate = Map::new();
    predicate.insert("name".into(), json!(link.name));
    predicate.insert("command".into(), json!(link.command));
    predicate.insert(
        "materials".into(),
        Value::Array(
            link.materials
                .iter()
                .map(|(name, digest)| ResourceDescriptor::artifact(name, digest).to_value())
                .collect(),
        ),
    );
    predicate.insert("byproducts".into(), signed["byproducts"].clone());
    predicate.insert("environment".into(), signed["environment"].clone());
    Statement {
        subject: subjects(link),
        predicate_type: LINK_PREDICATE.into(),
        predicate,
    }
}

/// Why a statement is not a link attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToLinkError {
    /// Its predicateType (another predicate).
    NotLink(String),
    Field(FieldError),
}

impl From<FieldError> for ToLinkError {
    fn from(e: FieldError) -> Self {
        ToLinkError::Field(e)
    }
}

/// The classic link a link attestation stands for (the specification's
/// "Converting to old-style links"), read strictly: unknown predicate
/// fields, materials without name or digest, and names given twice are
/// refused.
pub fn to_link(statement: &Statement) -> Result<Link, ToLinkError> {
    if statement.predicate_type != LINK_PREDICATE {
        return Err(ToLinkError::NotLink(statement.predicate_type.clone()));
    }
    let p = &statement.predicate;
    if let Some(key) = p.keys().find(|k| {
        !["name", "command", "materials", "byproducts", "environment"].contains(&k.as_str())
    }) {
        return Err(FieldError::new(format!("predicate.{key}"), "unknown field").into());
    }
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new("predicate.name", "missing or not a string"))?
        .to_string();
    let command = match p.get("command") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.as_str().map(str::to_string).ok_or_else(|| {
                    FieldError::new(format!("predicate.command[{i}]"), "not a string")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(FieldError::new("predicate.command", "not a list").into()),
    };
    let mut materials = ArtifactMap::new();
    match p.get("materials") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("predicate.materials[{i}]");
                let rd = ResourceDescriptor::from_value(item, &field)?;
                only_name_and_digest(&rd, &field)?;
                let Some(name) = rd.name else {
                    return Err(FieldError::new(&field, "no name").into());
                };
                if rd.digest.is_empty() {
                    return Err(FieldError::new(&field, "no digest").into());
                }
                if materials.insert(name.clone(), rd.digest).is_some() {
                    return Err(
                        FieldError::new(&field, format!("name {name:?} given twice")).into(),
                    );
                }
            }
        }
        Some(_) => return Err(FieldError::new("predicate.materials", "not a list").into()),
    }
    let mut products = ArtifactMap::new();
    for (i, s) in statement.subject.iter().enumerate() {
        let field = format!("subject[{i}]");
        only_name_and_digest(s, &field)?;
        let Some(name) = &s.name else {
            return Err(FieldError::new(&field, "no name").into());
        };
        if products.insert(name.clone(), s.digest.clone()).is_some() {
            return Err(FieldError::new(&field, format!("name {name:?} given twice")).into());
        }
    }
    let object = |key: &str| -> Result<Map<String, Value>, FieldError> {
        match p.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(FieldError::new(format!("predicate.{key}"), "not an object")),
        }
    };
    let by = object("byproducts")?;
    let text = |k: &str| -> Result<Option<String>, FieldError> {
        match by.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(FieldError::new(
                format!("predicate.byproducts.{k}"),
                "not a string",
            )),
        }
    };
    let return_value = match by.get("return-value") {
        None => None,
        // A protobuf Struct holds numbers as doubles: 0.0 is 0.
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| {
                    FieldError::new("predicate.byproducts.return-value", "not an integer")
                })?,
        ),
    };
    Ok(Link {
        name,
        command,
        materials,
        products,
        byproducts: Byproducts {
            return_value,
            stdout: text("stdout")?,
            stderr: text("stderr")?,
        },
        environment: object("environment")?,
    })
}

/// A link attestation's artifacts are what a link's are: a name and its
/// digests. A `uri`, `downloadLocation`, `mediaType` or `annotations` would
/// be dropped in the link the attestation stands for, so it is refused
/// rather than signed for and lost.
fn only_name_and_digest(rd: &ResourceDescriptor, field: &str) -> Result<(), FieldError> {
    let extra = [
        ("uri", rd.uri.is_some()),
        ("downloadLocation", rd.download_location.is_some()),
        ("mediaType", rd.media_type.is_some()),
        ("annotations", !rd.annotations.is_empty()),
    ];
    match extra.iter().find(|(_, present)| *present) {
        Some((key, _)) => Err(FieldError::new(
            format!("{field}.{key}"),
            "not allowed in a link attestation (a link's artifacts have a name and digests only)",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{key, sample_link};
    use super::super::*;
    use super::*;
    use crate::keys::KeyIdFormat;

    #[test]
    fn predicate_has_exactly_the_specified_fields() {
        let st = statement(&sample_link());
        let v = st.to_value();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], LINK_PREDICATE);
        let keys: Vec<&String> = st.predicate.keys().collect();
        assert_eq!(
            keys,
            ["byproducts", "command", "environment", "materials", "name"]
        );
        assert_eq!(v["predicate"]["command"], json!(["make", "-j2"]));
        assert_eq!(
            v["predicate"]["materials"][0],
            json!({"name": "Makefile", "digest": {"sha256": "a1".repeat(32)}})
        );
        assert_eq!(v["predicate"]["byproducts"]["return-value"], 0);
        assert!(v["predicate"]["environment"]["tracelink"].is_object());
    }

    #[test]
    fn link_round_trips_through_a_signed_attestation() {
        let link = sample_link();
        let key = key();
        let keyid = key.keyid(KeyIdFormat::Python);
        let bytes = sign(&statement(&link), &key, &keyid).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name("build", &keyid, Kind::Link));
        std::fs::write(&path, &bytes).unwrap();
        let public = key.public();
        let (back, by) = read_link_attestation(&path, &[(&keyid, &public)]).unwrap();
        assert_eq!(by, keyid);
        assert_eq!(back, link);
        // A link without a command or byproducts too.
        let bare = Link {
            name: "x".into(),
            products: link.products.clone(),
            ..Link::default()
        };
        assert_eq!(to_link(&statement(&bare)).unwrap(), bare);
    }

    #[test]
    fn other_predicates_and_bad_materials_are_refused() {
        let link = sample_link();
        let mut st = statement(&link);
        st.predicate_type = PROVENANCE_PREDICATE.into();
        assert_eq!(
            to_link(&st),
            Err(ToLinkError::NotLink(PROVENANCE_PREDICATE.into()))
        );
        let mut st = statement(&link);
        st.predicate["materials"][1] = json!({"name": "Makefile", "digest": {"sha256": "00"}});
        let Err(ToLinkError::Field(f)) = to_link(&st) else {
            panic!()
        };
        assert_eq!(f.field, "predicate.materials[1]");
        let mut st = statement(&link);
        st.predicate["materials"][0] = json!({"name": "Makefile"});
        let Err(ToLinkError::Field(f)) = to_link(&st) else {
            panic!()
        };
        assert_eq!(
            (f.field.as_str(), f.reason.as_str()),
            ("predicate.materials[0]", "no digest")
        );
        let mut st = statement(&link);
        st.predicate.insert("products".into(), json!({}));
        let Err(ToLinkError::Field(f)) = to_link(&st) else {
            panic!()
        };
        assert_eq!(f.field, "predicate.products");
    }

    /// A subject or material with more than a name and digests (a `uri`,
    /// annotations...) was accepted and those fields dropped from the link
    /// the attestation stands for; a subject named twice kept the last.
    #[test]
    fn link_attestation_artifacts_with_more_than_name_and_digest_are_refused() {
        let link = sample_link();
        let field_of = |st: &Statement| match to_link(st) {
            Err(ToLinkError::Field(f)) => f.field,
            other => panic!("{other:?}"),
        };
        let mut st = statement(&link);
        st.subject[0].uri = Some("https://example.invalid/x".into());
        assert_eq!(field_of(&st), "subject[0].uri");
        let mut st = statement(&link);
        st.subject[0].annotations.insert("note".into(), json!("x"));
        assert_eq!(field_of(&st), "subject[0].annotations");
        let mut st = statement(&link);
        let first = st.subject[0].clone();
        st.subject.push(first);
        let last = st.subject.len() - 1;
        assert_eq!(field_of(&st), format!("subject[{last}]"));
        let mut st = statement(&link);
        st.predicate["materials"][0]["mediaType"] = json!("text/plain");
        assert_eq!(field_of(&st), "predicate.materials[0].mediaType");
    }
}
