//! The runtime trace's form on disk.
//!
//! A trace is a JSON document (`crate::account::Trace` reads it). Up to
//! format 2 it was written as pretty-printed JSON; a libsodium-sized build
//! made a trace of hundreds of megabytes, nearly all of it the same paths
//! and arguments again and again. Format 3 is a container for such a
//! document (which keeps its own `format`, 1 or 2: what its content
//! means), written compactly:
//!
//! - `{"_type": "tracelink-trace", "format": 3, "strings": [...], "trace": {...}}`:
//!   every string value (not object keys) that occurs more than once and is
//!   longer than a reference is stored once in `strings`, and each of its
//!   places holds `"@N"` (its index). A string of the document that itself
//!   begins with `@` is stored with one more `@` in front. This is generic
//!   over the JSON: fields added to the trace later are compacted too.
//! - object members whose value is `null` are left out (readers take a
//!   missing field as not recorded, as they always did);
//! - no indentation, and the whole file gzip-compressed (RFC 1952), named
//!   `<link>.trace.json.gz` ([`COMPRESSED_SUFFIX`]).
//!
//! Readers ([`decompress`], then `crate::account::Trace::parse` or
//! [`read_json`]) take every version: plain JSON of formats 1 and 2
//! (and 3), and any of them gzip-compressed (recognized by the gzip magic
//! bytes, not by the name). The link signs the sha256 of the file as
//! written: the compressed bytes, checked before anything is decompressed.
//! Decompression is bounded: a file that would expand beyond the limit
//! (the `crate::untrusted::TRACE` bound, 1 GiB) is refused while it is
//! being read, so a small crafted file cannot fill memory (a gzip bomb).

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Read as _;

/// The format [`encode`] writes.
pub const FORMAT: u64 = 3;

/// What the trace's file name ends with when [`encode`] wrote it: the link's
/// name, then this (still matched by the default exclude `*.link*`).
pub const COMPRESSED_SUFFIX: &str = ".trace.json.gz";

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a trace file's bytes are not a JSON document.
#[derive(Debug, thiserror::Error)]
pub enum TraceFileError {
    #[error("its content is larger than a runtime trace may be ({max} bytes decompressed)")]
    TooLarge { max: u64 },
    #[error("not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("cannot encode the trace: {0}")]
    Encode(#[source] std::io::Error),
}

/// Whether `bytes` are gzip-compressed.
pub fn is_compressed(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The JSON bytes of a trace file: decompressed (at most `max` bytes) when
/// it is gzip, as they are otherwise. Every member of a multi-member gzip
/// file is read, as `gzip -d` does.
pub fn decompress(bytes: &[u8], max: u64) -> Result<std::borrow::Cow<'_, [u8]>, TraceFileError> {
    if !is_compressed(bytes) {
        if bytes.len() as u64 > max {
            return Err(TraceFileError::TooLarge { max });
        }
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    // One byte more than allowed tells a bomb from a file of exactly `max`.
    flate2::read::MultiGzDecoder::new(bytes)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(TraceFileError::Gzip)?;
    if out.len() as u64 > max {
        return Err(TraceFileError::TooLarge { max });
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// The bytes of a trace file for `trace` (a trace document of any format):
/// compacted to [`FORMAT`] and gzip-compressed.
pub fn encode(trace: &Value) -> Result<Vec<u8>, TraceFileError> {
    let json = serde_json::to_vec(&compact(trace)).map_err(|e| TraceFileError::Encode(e.into()))?;
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 8),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(&mut gz, &json).map_err(TraceFileError::Encode)?;
    gz.finish().map_err(TraceFileError::Encode)
}

/// The trace document in a trace file's bytes, whatever its version:
/// decompressed (at most `max` bytes), parsed, and expanded when it is
/// format 3. (`crate::account::Trace::parse` reads the same and checks more.)
pub fn read_json(bytes: &[u8], max: u64) -> Result<Value, String> {
    let json = decompress(bytes, max).map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_slice(&json).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("format").and_then(Value::as_u64) == Some(FORMAT) {
        expand(value)
    } else {
        Ok(value)
    }
}

/// Shortest string worth a place in the table: a reference is `"@N"`.
const MIN_SHARED: usize = 4;

/// The format-3 document of a trace (see the module doc).
pub fn compact(trace: &Value) -> Value {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    count_strings(trace, &mut counts);
    let mut table: Vec<&str> = counts
        .iter()
        .filter(|(s, n)| **n > 1 && s.len() >= MIN_SHARED)
        .map(|(s, _)| *s)
        .collect();
    // Most used first (shortest references), then by text: deterministic.
    table.sort_by(|a, b| counts[b].cmp(&counts[a]).then(a.cmp(b)));
    let index: HashMap<&str, usize> = table.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut body = encode_value(trace, &index);
    if let Value::Object(map) = &mut body {
        map.remove("_type");
    }
    let mut doc = Map::new();
    doc.insert("_type".into(), Value::from("tracelink-trace"));
    doc.insert("format".into(), Value::from(FORMAT));
    doc.insert(
        "strings".into(),
        Value::Array(table.iter().map(|s| Value::from(*s)).collect()),
    );
    doc.insert("trace".into(), body);
    Value::Object(doc)
}

fn count_strings<'a>(value: &'a Value, counts: &mut HashMap<&'a str, u32>) {
    match value {
        Value::String(s) => *counts.entry(s).or_default() += 1,
        Value::Array(items) => items.iter().for_each(|v| count_strings(v, counts)),
        Value::Object(map) => map.values().for_each(|v| count_strings(v, counts)),
        _ => {}
    }
}

fn encode_value(value: &Value, index: &HashMap<&str, usize>) -> Value {
    match value {
        Value::String(s) => match index.get(s.as_str()) {
            Some(i) => Value::String(format!("@{i}")),
            None if s.starts_with('@') => Value::String(format!("@{s}")),
            None => Value::String(s.clone()),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| encode_value(v, index)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), encode_value(v, index)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The trace document a format-3 document holds: its strings put back,
/// `_type` on top, its own `format` (1 or 2) as it was. Fails on a
/// reference outside the table.
pub fn expand(doc: Value) -> Result<Value, String> {
    let Value::Object(mut doc) = doc else {
        return Err("not a JSON object".into());
    };
    let strings = match doc.remove("strings") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("`strings` holds {other}, not a string")),
            })
            .collect::<Result<Vec<String>, String>>()?,
        None => Vec::new(),
        Some(other) => return Err(format!("`strings` is {other}, not a list")),
    };
    let mut body = match doc.remove("trace") {
        Some(body @ Value::Object(_)) => body,
        None => return Err("format 3 without `trace`".into()),
        Some(_) => return Err("`trace` is not a JSON object".into()),
    };
    expand_value(&mut body, &strings)?;
    if let Value::Object(map) = &mut body {
        map.insert("_type".into(), Value::from("tracelink-trace"));
    }
    Ok(body)
}

fn expand_value(value: &mut Value, strings: &[String]) -> Result<(), String> {
    match value {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix('@') {
                if rest.starts_with('@') {
                    *s = rest.to_string();
                } else {
                    let shared = rest
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| strings.get(i))
                        .ok_or_else(|| {
                            format!(
                                "the reference {:?} names no entry of `strings` ({} entries)",
                                crate::text::printable(s),
                                strings.len()
                            )
                        })?;
                    *s = shared.clone();
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                expand_value(v, strings)?;
            }
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                expand_value(v, strings)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "_type": "tracelink-trace", "format": 2, "root": "/src/proj",
            "store": null, "exit": {"code": 0, "signal": null},
            "process_tree": [
                {"pid": 2, "execs": [{"argv": ["cc", "-c", "@file", "@@x"], "cwd": "/src/proj"}],
                 "read": ["include/common.h", "a.c"], "wrote": []},
                {"pid": 3, "execs": [{"argv": ["cc", "-c", "@file"], "cwd": "/src/proj"}],
                 "read": ["include/common.h", "b.c"], "wrote": ["@0"], "new_field": {"x": "include/common.h"}},
            ],
        })
    }

    #[test]
    fn compact_then_expand_is_the_trace_without_nulls() {
        let trace = sample();
        let doc = compact(&trace);
        assert_eq!(doc["format"], 3);
        assert!(
            doc["strings"]
                .as_array()
                .unwrap()
                .contains(&json!("include/common.h"))
        );
        let back = expand(doc).unwrap();
        let mut want = trace;
        want.as_object_mut().unwrap().remove("store");
        want["exit"].as_object_mut().unwrap().remove("signal");
        assert_eq!(back, want);
    }

    #[test]
    fn encode_is_gzip_and_decodes() {
        let bytes = encode(&sample()).unwrap();
        assert!(is_compressed(&bytes));
        let json = decompress(&bytes, 1 << 20).unwrap();
        let back = expand(serde_json::from_slice(&json).unwrap()).unwrap();
        assert_eq!(back["process_tree"][1]["wrote"][0], "@0");
        assert_eq!(back["process_tree"][0]["execs"][0]["argv"][3], "@@x");
        // Plain JSON passes through.
        assert_eq!(&*decompress(b"{}", 10).unwrap(), b"{}");
    }

    #[test]
    fn a_bomb_is_refused_while_reading() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b' '; 4 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        assert!(matches!(
            decompress(&bomb, 1 << 20),
            Err(TraceFileError::TooLarge { max }) if max == 1 << 20
        ));
        assert!(decompress(&bomb, 4 << 20).is_ok());
        assert!(matches!(
            decompress(&bomb[..bomb.len() / 2], 8 << 20),
            Err(TraceFileError::Gzip(_))
        ));
    }

    #[test]
    fn bad_references_are_errors() {
        let doc = json!({"_type": "tracelink-trace", "format": 3, "strings": ["abcd"], "trace": {"a": "@1"}});
        assert!(expand(doc).unwrap_err().contains("names no entry"));
        let doc = json!({"format": 3, "strings": [1], "trace": {}});
        assert!(expand(doc).is_err());
    }
}
