//! JSON text laid out as Python's `json.dumps(obj, sort_keys=True, ...)` lays
//! it out, with `ensure_ascii` on. in-toto's reference writes classic link
//! files with `indent=1, separators=(",", ": ")` and DSSE payloads and
//! envelopes with the defaults; writing the same text keeps our files
//! byte-identical to in-toto-run's and makes the DSSE payload (whose exact
//! bytes are signed) reproducible. This module knows JSON values only.

use serde_json::Value;
use std::fmt::Write;

/// Python's `json.dumps(value, sort_keys=True, indent=indent)`, with the
/// separators in-toto uses for that indent: `(", ", ": ")` without indent,
/// `(",", ": ")` with one.
pub fn dumps(value: &Value, indent: Option<usize>) -> String {
    let mut out = String::with_capacity(512);
    write_value(value, indent, 0, &mut out);
    out
}

/// Like `dumps`, for a value nested `level` deep in an indented document.
pub fn dumps_at(value: &Value, indent: Option<usize>, level: usize) -> String {
    let mut out = String::with_capacity(512);
    write_value(value, indent, level, &mut out);
    out
}

fn newline(indent: Option<usize>, level: usize, out: &mut String) {
    if let Some(width) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', width * level));
    }
}

fn write_value(value: &Value, indent: Option<usize>, level: usize, out: &mut String) {
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(indent, level + 1, out);
                write_value(item, indent, level + 1, out);
            }
            newline(indent, level, out);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(indent, level + 1, out);
                write_string(key, out);
                out.push_str(": ");
                write_value(item, indent, level + 1, out);
            }
            newline(indent, level, out);
            out.push('}');
        }
    }
}

/// Python's `ensure_ascii` string encoder.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        // Printable ASCII other than `"` and `\` is written as it is: copy
        // such runs whole (artifact paths and digests are mostly that).
        let plain = rest
            .bytes()
            .position(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
            .unwrap_or(rest.len());
        out.push_str(&rest[..plain]);
        rest = &rest[plain..];
        let Some(c) = rest.chars().next() else { break };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_python_ensure_ascii() {
        let v = json!("a\"b\\c\n\t\u{1}\u{7f}é😀/");
        assert_eq!(
            dumps(&v, None),
            r#""a\"b\\c\n\t\u0001\u007f\u00e9\ud83d\ude00/""#
        );
    }

    #[test]
    fn default_layout_matches_python() {
        // python3 -c 'import json; print(json.dumps({"b":[1,{}],"a":{"x":[]}}, sort_keys=True))'
        let v = json!({"b": [1, {}], "a": {"x": []}});
        assert_eq!(dumps(&v, None), r#"{"a": {"x": []}, "b": [1, {}]}"#);
    }

    #[test]
    fn indented_layout_matches_python() {
        let v = json!({"b": [1, "x"], "a": {}});
        assert_eq!(
            dumps(&v, Some(1)),
            "{\n \"a\": {},\n \"b\": [\n  1,\n  \"x\"\n ]\n}"
        );
    }
}
