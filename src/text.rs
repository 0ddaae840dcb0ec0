//! Text meant for people, from untrusted input (design.md section 6).
//!
//! File names, commands and environment values in links, traces and layouts
//! may be crafted: a name holding `ESC [2K` can erase a line of a listing on
//! a terminal, U+009B is a one-byte CSI, U+202E turns the rest of a line
//! around. Everything printed for a person goes through `printable`, which
//! escapes every character Python's `str.isprintable()` rejects (the
//! general categories Cc, Cf, Cs, Co, Cn, Zl, Zp, and Zs other than the
//! space) as `\xNN`, `\uNNNN` or `\UNNNNNNNN`. Machine output (`--json`)
//! stays exact JSON and does not use this module.
//!
//! This module knows characters only.

use std::borrow::Cow;
use std::fmt::Write as _;
use unicode_general_category::{GeneralCategory, get_general_category};

/// Whether Python's `str.isprintable()` accepts `c`.
pub fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    )
}

/// `s` with every non-printable character escaped (borrowed when nothing
/// needed escaping).
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_printable) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_printable(c) {
            out.push(c);
        } else {
            let n = c as u32;
            let _ = if n <= 0xff {
                write!(out, "\\x{n:02x}")
            } else if n <= 0xffff {
                write!(out, "\\u{n:04x}")
            } else {
                write!(out, "\\U{n:08x}")
            };
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(
            printable("id_rsa\u{1b}[2K\u{1b}[1A\r  README.md"),
            "id_rsa\\x1b[2K\\x1b[1A\\x0d  README.md"
        );
        assert_eq!(printable("a\u{9b}31mb"), "a\\x9b31mb");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u202etxt.exe");
        assert_eq!(printable("tag\u{e0041}"), "tag\\U000e0041");
        assert_eq!(printable("line\nbreak\ttab"), "line\\x0abreak\\x09tab");
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        for s in [
            "plain.c",
            "with space",
            "héllo wörld",
            "日本語",
            "a\\b",
            "emoji 🎉",
        ] {
            assert!(matches!(printable(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn separators_other_than_space_are_escaped_as_python_does() {
        // Python: '\u00a0'.isprintable() == False, '\u2028'... == False
        assert_eq!(
            printable("a\u{a0}b\u{2028}c\u{3000}"),
            "a\\xa0b\\u2028c\\u3000"
        );
        assert_eq!(printable("soft\u{ad}hyphen"), "soft\\xadhyphen");
    }
}
