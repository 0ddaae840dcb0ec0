//! Canonical JSON exactly as in-toto's reference implementation
//! (securesystemslib's `encode_canonical`) produces it: the byte string that a
//! classic link signature covers.
//!
//! Rules: object keys sorted by code point, no whitespace, integers only,
//! and only `\` and `"` escaped inside strings; every other character,
//! control characters included, is written raw as UTF-8. No Unicode
//! normalization. This module knows JSON values, nothing of links or keys.

use serde_json::Value;

/// A value that canonical JSON cannot represent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("canonical JSON has no floating-point numbers (found {0})")]
    Float(String),
}

/// Encodes `value` as canonical JSON bytes.
pub fn encode(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(CanonicalError::Float(n.to_string()));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's Map is a BTreeMap<String, _> here: UTF-8 byte order
            // is code point order, which is what Python's sorted() gives.
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = rest.iter().position(|&b| b == b'"' || b == b'\\') {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\\');
        out.push(rest[i]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CASES: &str = include_str!("../../tests/vectors/canonical-json-cases.json");

    #[test]
    fn reproduces_every_reference_case() {
        let doc: Value = serde_json::from_str(CASES).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() >= 11);
        for case in cases {
            let want = hex::decode(case["canonical_utf8_hex"].as_str().unwrap()).unwrap();
            let got = encode(&case["input"]).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "case {}",
                case["name"]
            );
        }
    }

    #[test]
    fn rejects_floats() {
        assert_eq!(
            encode(&json!({"a": 1.5})),
            Err(CanonicalError::Float("1.5".into()))
        );
    }

    #[test]
    fn large_unsigned_integers_are_kept() {
        assert_eq!(encode(&json!(u64::MAX)).unwrap(), b"18446744073709551615");
    }
}
