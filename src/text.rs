//! Text meant for people, from untrusted input (docs/threat-model.md).
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
//! This module knows characters, and how a shell reads them back, only.

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

/// `text` (several lines) with every non-printable character but the line
/// feed escaped as [`printable`] does: for whole renderings whose fields
/// went through [`printable`] already, so that nothing a field missed
/// reaches the terminal.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    if text.chars().all(|c| c == '\n' || is_printable(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&printable(line));
    }
    Cow::Owned(out)
}

/// `word` as a shell reads it back, printable: bare when it is made of
/// characters no shell treats specially, in single quotes when it is
/// printable, and otherwise in ANSI-C quotes (`$'...'`, bash, zsh, ksh,
/// busybox sh and POSIX.1-2024 sh; not dash before 0.5.12) with each byte
/// of a non-printable character as `\xHH`, so the text stays printable and
/// the shell gets the exact bytes whatever its locale. `None` for a word
/// holding NUL, which no command-line argument or file name can hold.
pub fn shell_word(word: &str) -> Option<Cow<'_, str>> {
    let bare = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if bare {
        return Some(Cow::Borrowed(word));
    }
    if word.contains('\0') {
        return None;
    }
    if word.chars().all(is_printable) {
        return Some(Cow::Owned(format!("'{}'", word.replace('\'', r"'\''"))));
    }
    let mut out = String::with_capacity(word.len() + 8);
    out.push_str("$'");
    let mut utf8 = [0u8; 4];
    for c in word.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            c if is_printable(c) => out.push(c),
            c => {
                for b in c.encode_utf8(&mut utf8).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
        }
    }
    out.push('\'');
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_texts_keep_their_lines() {
        assert_eq!(printable_lines("a\nb\n"), "a\nb\n");
        assert_eq!(
            printable_lines("one\x1b[2K\ntwo\u{202e}\r\n"),
            "one\\x1b[2K\ntwo\\u202e\\x0d\n"
        );
    }

    #[test]
    fn shell_words_are_printable_and_exact() {
        let word = |w| shell_word(w).unwrap().into_owned();
        assert_eq!(word("src/a.c"), "src/a.c");
        assert_eq!(word(""), "''");
        assert_eq!(word("it's here"), r"'it'\''s here'");
        assert_eq!(word("é"), "'é'");
        assert_eq!(
            word("id_rsa\u{1b}[2K\r it's\\"),
            r"$'id_rsa\x1b[2K\x0d it\'s\\'"
        );
        assert_eq!(word("a\u{9b}b\u{202e}c"), r"$'a\xc2\x9bb\xe2\x80\xaec'");
        assert_eq!(shell_word("a\0b"), None);
    }

    #[test]
    fn bash_reads_shell_words_back_exactly() {
        if std::process::Command::new("bash")
            .arg("-c")
            .arg("true")
            .status()
            .is_err()
        {
            return;
        }
        let words = [
            "plain",
            "with space",
            "it's",
            "id_rsa\u{1b}[2K\u{1b}[1A\u{1b}[2K\r  README.md",
            "csi\u{9b}2J",
            "evil\u{202e}txt.sh",
            "back\\slash'\"q\u{7f}\n\t",
            "emoji 🎉\u{e0041}",
        ];
        let line: Vec<String> = words
            .iter()
            .map(|w| shell_word(w).unwrap().into_owned())
            .collect();
        for (w, q) in words.iter().zip(&line) {
            assert!(q.chars().all(is_printable), "{w:?} quoted as {q:?}");
        }
        let out = std::process::Command::new("bash")
            .env("LC_ALL", "C")
            .arg("-c")
            .arg(format!("printf '%s\\0' {}", line.join(" ")))
            .output()
            .unwrap();
        let read: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        let want: Vec<&[u8]> = words
            .iter()
            .map(|w| w.as_bytes())
            .chain([&b""[..]])
            .collect();
        assert_eq!(read, want);
    }

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
