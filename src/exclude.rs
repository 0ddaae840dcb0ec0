//! Artifact exclude patterns, compatible with `in-toto-run`.
//!
//! in-toto 3.1.0 decides whether to leave an artifact out of a link with
//! `pathspec.GitIgnoreSpec.from_lines("gitwildmatch", patterns).match_file(path)`
//! (pathspec 1.1.1). This module reproduces exactly that decision: the same
//! pattern-to-regex translation as pathspec's `GitIgnoreSpecPattern`, the same
//! path normalization as `match_file`, and the same rule for combining
//! several matching patterns as pathspec's default ("simple") GitIgnoreSpec
//! backend.
//!
//! It is pure string matching: it knows nothing of files, directories, the
//! file system or links. Callers pass the path exactly as in-toto would hand it
//! to `match_file` (a relative path such as `foo/bar.txt` or `sub/dir`,
//! directories without a trailing slash, or an absolute path if the user gave
//! absolute paths).
//!
//! # Semantics (pathspec 1.1.1, `GitIgnoreSpec`)
//!
//! Each pattern is first turned into a regular expression:
//!
//! * Trailing whitespace (Python's `str.isspace`) is stripped, unless the
//!   pattern ends with `"\\ "` (an escaped space), in which case nothing is
//!   stripped at all.
//! * Blank patterns, patterns starting with `#` and the pattern `/` are
//!   no-ops.
//! * A leading `!` negates the pattern (a match re-includes the path).
//! * The pattern is split on `/`. A leading `/` anchors it at the root; a
//!   pattern of a single segment (optionally followed by `/`) matches at any
//!   depth (`**/` is prepended); a trailing `/` becomes `/**` and only matches
//!   "inside a directory" (a *directory-mark* match); consecutive `**`
//!   segments collapse.
//! * Segments are translated glob by glob: `*` = `[^/]*`, `?` = `[^/]`,
//!   `\x` = literal `x`, `[...]` = a bracket expression (`!` or `^` negates;
//!   it is handed to Python's `re`, whose character-class syntax is emulated
//!   here, including its "bad character range" error). An unterminated `[`
//!   makes the whole pattern a no-op (git discards such patterns); a trailing
//!   unescaped `\` is an error.
//!
//! `is_excluded(path)` then normalizes `path` like `pathspec.util.normalize_file`
//! on POSIX (one leading `/` or, failing that, one leading `./` is removed),
//! searches every pattern's regex in it, and combines the results like
//! pathspec: scanning from the last pattern to the first, the first pattern
//! that matches *without* the directory mark decides; if only directory-mark
//! matches exist, the last of them decides; no match means "not excluded".
//!
//! Python's `$` also matches just before a final `\n`; that is reproduced
//! (`foo` excludes `"foo\n"`, as pathspec does).
//!
//! Two things are left to the caller:
//!
//! * in-toto-run replaces an *empty* pattern list by the defaults; here an
//!   empty list excludes nothing. Use [`ExcludeSet::defaults`] for that case.
//! * Paths are `&str`. Python sees a non-UTF-8 file name with each invalid
//!   byte as one (surrogate) character; replace each invalid byte by one
//!   character (e.g. U+FFFD) to keep `?`/`*`/`[...]` counting the same.
//!
//! `tests/exclude_parity.rs` checks this module against pathspec itself.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// Name of the capture group pathspec uses for the directory mark.
const DIR_MARK: &str = "ps_d";
/// `_DIR_MARK_CG`: the directory marker.
const DIR_MARK_CG: &str = "(?P<ps_d>/)";
/// `_DIR_MARK_OPT`: the directory marker or the end of the path. Python's `$`
/// (without MULTILINE) also matches before a trailing newline; nothing ever
/// follows this fragment, so consuming that newline is equivalent.
const DIR_MARK_OPT: &str = "(?:(?P<ps_d>/)|\\n?\\z)";
/// Python's `re` has no compiled-size limit; keep Rust's far out of reach.
const REGEX_SIZE_LIMIT: usize = 256 * 1024 * 1024;

/// An exclude pattern that pathspec would reject (raise on).
#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    /// `pattern` cannot be compiled; `reason` says why.
    #[error("invalid exclude pattern {pattern:?}: {reason}")]
    Invalid {
        /// The offending pattern, exactly as given.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// One compiled, non-no-op pattern.
#[derive(Debug, Clone)]
struct Rule {
    regex: Regex,
    /// pathspec's `include`: `true` for a normal pattern (a match excludes),
    /// `false` for a `!` pattern (a match re-includes).
    excludes: bool,
    /// Whether the regex has the directory-mark group at all.
    has_dir_mark: bool,
}

/// A compiled list of in-toto-run exclude patterns.
#[derive(Debug, Clone)]
pub struct ExcludeSet {
    /// All rule regexes, for a single pass that finds the candidates.
    set: RegexSet,
    /// Rules in pattern order (no-op patterns dropped).
    rules: Vec<Rule>,
}

impl ExcludeSet {
    /// in-toto-run's defaults.
    pub const DEFAULT_PATTERNS: [&'static str; 4] = ["*.link*", ".git", "*.pyc", "*~"];

    /// Compiles `patterns` in order, like
    /// `GitIgnoreSpec.from_lines("gitwildmatch", patterns)`.
    ///
    /// Fails on the first pattern pathspec would raise on.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, ExcludeError> {
        let mut rules = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let invalid = |reason: String| ExcludeError::Invalid {
                pattern: pattern.to_owned(),
                reason,
            };
            // `from_lines` skips empty lines; they would be no-ops anyway.
            if pattern.is_empty() {
                continue;
            }
            let Some((source, excludes)) = pattern_to_regex(pattern).map_err(invalid)? else {
                continue;
            };
            let regex = RegexBuilder::new(&source)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| invalid(format!("cannot compile regex {source:?}: {e}")))?;
            let has_dir_mark = regex.capture_names().flatten().any(|n| n == DIR_MARK);
            rules.push(Rule {
                regex,
                excludes,
                has_dir_mark,
            });
        }
        let set = RegexSetBuilder::new(rules.iter().map(|r| r.regex.as_str()))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| ExcludeError::Invalid {
                pattern: patterns
                    .iter()
                    .map(|p| p.as_ref())
                    .collect::<Vec<_>>()
                    .join("\n"),
                reason: format!("cannot compile the combined pattern set: {e}"),
            })?;
        Ok(Self { set, rules })
    }

    /// The set built from [`Self::DEFAULT_PATTERNS`].
    pub fn defaults() -> Self {
        Self::new(&Self::DEFAULT_PATTERNS).expect("default exclude patterns are valid")
    }

    /// True when pathspec's GitIgnoreSpec.match_file(path) is True.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = normalize_file(path);
        let matches = self.set.matches(path);
        if !matches.matched_any() {
            return false;
        }
        // pathspec's SimpleGiBackend, reversed order: the last file match
        // (priority 2) wins outright; otherwise the last directory-mark match
        // (priority 1) decides.
        let mut dir_match: Option<bool> = None;
        for index in matches.iter().rev() {
            let rule = &self.rules[index];
            let dir_mark = rule.has_dir_mark
                && rule
                    .regex
                    .captures(path)
                    .is_some_and(|c| c.name(DIR_MARK).is_some());
            if !dir_mark {
                return rule.excludes;
            }
            dir_match.get_or_insert(rule.excludes);
        }
        dir_match.unwrap_or(false)
    }
}

/// `pathspec.util.normalize_file` on POSIX (`NORMALIZE_PATH_SEPS` is empty).
fn normalize_file(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix('/') {
        rest
    } else if let Some(rest) = path.strip_prefix("./") {
        rest
    } else {
        path
    }
}

/// Python's `str.isspace()`, which `str.rstrip()` uses. Wider than Rust's
/// `char::is_whitespace` (it includes U+001C..U+001F).
fn py_isspace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{b}'
            | '\u{c}'
            | '\r'
            | '\u{1c}'..='\u{1f}'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// How translating a segment glob can fail.
enum GlobError {
    /// `_RangeError`: unterminated `[`; git (and pathspec) discard the pattern.
    Range,
    /// `GitIgnorePatternError` / `re.error`: pathspec raises.
    Invalid(String),
}

/// `GitIgnoreSpecPattern.pattern_to_regex`, returning the Rust regex source and
/// pathspec's `include`, `None` for a no-op pattern, or the reason pathspec
/// raises.
fn pattern_to_regex(pattern: &str) -> Result<Option<(String, bool)>, String> {
    let pattern = if pattern.ends_with("\\ ") {
        // An escaped trailing space: pathspec strips nothing.
        pattern
    } else {
        pattern.trim_end_matches(py_isspace)
    };

    if pattern.is_empty() || pattern.starts_with('#') || pattern == "/" {
        return Ok(None);
    }

    let (pattern, include) = match pattern.strip_prefix('!') {
        Some(rest) => (rest, false),
        None => (pattern, true),
    };

    let segs: Vec<&str> = pattern.split('/').collect();
    let is_dir_pattern = segs.last().is_some_and(|s| s.is_empty());

    let segs = match normalize_segments(is_dir_pattern, segs)? {
        Normalized::Override(regex) => return Ok(Some((regex.to_owned(), include))),
        Normalized::Segments(segs) => segs,
    };

    match translate_segments(is_dir_pattern, &segs) {
        Ok(regex) => Ok(Some((regex, include))),
        Err(GlobError::Range) => Ok(None),
        Err(GlobError::Invalid(reason)) => Err(reason),
    }
}

enum Normalized<'a> {
    Segments(Vec<&'a str>),
    Override(&'static str),
}

/// `GitIgnoreSpecPattern.__normalize_segments`.
fn normalize_segments(is_dir_pattern: bool, mut segs: Vec<&str>) -> Result<Normalized<'_>, String> {
    if segs[0].is_empty() {
        // Leading slash: relative to the root.
        segs.remove(0);
    } else if (segs.len() == 1 || (segs.len() == 2 && segs[1].is_empty())) && segs[0] != "**" {
        // A single segment matches at any depth.
        segs.insert(0, "**");
    }

    if segs.is_empty() {
        return Err("pattern normalized to nothing".to_owned());
    }

    if let Some(last) = segs.last_mut()
        && last.is_empty()
    {
        // Trailing slash: everything below the directory.
        *last = "**";
    }

    // Collapse '**/**'.
    for i in (1..segs.len()).rev() {
        if segs[i - 1] == "**" && segs[i] == "**" {
            segs.remove(i);
        }
    }

    let over = match segs.as_slice() {
        ["**"] if is_dir_pattern => Some(DIR_MARK_CG),
        ["**"] => Some("."),
        ["**", "*"] => Some("."),
        ["**", "*", "**"] if is_dir_pattern => Some(DIR_MARK_CG),
        ["**", "*", "**"] => Some("/"),
        _ => None,
    };
    Ok(match over {
        Some(regex) => Normalized::Override(regex),
        None => Normalized::Segments(segs),
    })
}

/// `GitIgnoreSpecPattern.__translate_segments`.
fn translate_segments(is_dir_pattern: bool, segs: &[&str]) -> Result<String, GlobError> {
    let mut out = String::new();
    // The first error Python's `re.compile` would raise on the finished
    // regex. It only counts if the translation itself gets that far.
    let mut re_error: Option<String> = None;
    let mut need_slash = false;
    let end = segs.len() - 1;
    for (i, &seg) in segs.iter().enumerate() {
        if seg == "**" {
            if i == 0 {
                out.push_str("^(?:.+/)?");
            } else if i < end {
                out.push_str("(?:/.+)?");
                need_slash = true;
            } else if is_dir_pattern {
                out.push_str(DIR_MARK_CG);
            } else {
                out.push('/');
            }
        } else {
            if i == 0 {
                out.push('^');
            }
            if need_slash {
                out.push('/');
            }
            if seg == "*" {
                out.push_str("[^/]+");
            } else {
                translate_segment_glob(seg, &mut out, &mut re_error)?;
            }
            if i == end {
                out.push_str(DIR_MARK_OPT);
            }
            need_slash = true;
        }
    }
    match re_error {
        Some(reason) => Err(GlobError::Invalid(reason)),
        None => Ok(out),
    }
}

/// Appends a regex matching exactly `c` (Python: `re.escape(c)`).
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == '_' {
        out.push(c);
    } else {
        push_hex(out, c);
    }
}

fn push_hex(out: &mut String, c: char) {
    use std::fmt::Write;
    let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
}

/// `_GitIgnoreBasePattern._translate_segment_glob(pattern, 'raise')`.
///
/// An invalid bracket expression is not an error of the translation itself
/// but of the later `re.compile`: it is recorded in `re_error` (first one
/// wins) and the translation goes on, since an unterminated `[` or a trailing
/// `\` found later takes precedence, as in pathspec.
fn translate_segment_glob(
    glob: &str,
    out: &mut String,
    re_error: &mut Option<String>,
) -> Result<(), GlobError> {
    let chars: Vec<char> = glob.chars().collect();
    let end = chars.len();
    let mut escape = false;
    let mut i = 0;
    while i < end {
        let c = chars[i];
        i += 1;
        if escape {
            escape = false;
            push_literal(out, c);
        } else if c == '\\' {
            escape = true;
        } else if c == '*' {
            out.push_str("[^/]*");
        } else if c == '?' {
            out.push_str("[^/]");
        } else if c == '[' {
            let mut j = i;
            if j < end && (chars[j] == '!' || chars[j] == '^') {
                j += 1;
            }
            if j < end && chars[j] == ']' {
                j += 1;
            }
            while j < end && chars[j] != ']' {
                j += 1;
            }
            if j >= end {
                return Err(GlobError::Range);
            }
            j += 1; // one past the closing bracket
            let negate = chars[i] == '!' || chars[i] == '^';
            if negate {
                i += 1;
            }
            if let Err(reason) = push_python_class(negate, &chars[i..j], out) {
                re_error.get_or_insert(reason);
            }
            i = j;
        } else {
            push_literal(out, c);
        }
    }
    if escape {
        return Err(GlobError::Invalid(format!(
            "escape character found with no next character to escape: {glob:?}"
        )));
    }
    Ok(())
}

/// pathspec copies a bracket expression into Python's regex as
/// `"[" + ("^" if negated) + body.replace("\\", "\\\\")`, where `body` runs to
/// and includes the closing `]`. Parse `body` the way Python's `re` parser
/// (`sre_parse`, 3.11) parses a character set — every backslash is then a
/// literal backslash, `[` is literal, a `]` closes the set unless it is the
/// first item, `x-]` is `x` and `-`, and a range with its end below its start
/// is an error — and append the equivalent Rust class with every character
/// spelled as `\x{..}` (so Rust's nested classes and `&&`/`--`/`~~` set
/// operators never come into play).
///
/// Returns the `re.error` message Python would raise, if any.
fn push_python_class(negate: bool, body: &[char], out: &mut String) -> Result<(), String> {
    let mut class = String::from("[");
    if negate {
        class.push('^');
    }
    let mut items = 0usize;
    let mut k = 0;
    let next = |k: &mut usize| -> Option<char> {
        let c = body.get(*k).copied();
        *k += 1;
        c
    };
    let unterminated = || "unterminated character set".to_owned();
    loop {
        let this = next(&mut k).ok_or_else(unterminated)?;
        if this == ']' && items > 0 {
            break;
        }
        if body.get(k) == Some(&'-') {
            k += 1;
            let that = next(&mut k).ok_or_else(unterminated)?;
            if that == ']' {
                push_hex(&mut class, this);
                push_hex(&mut class, '-');
                break;
            }
            if that < this {
                return Err(format!(
                    "bad character range {}-{}",
                    py_class_text(this),
                    py_class_text(that)
                ));
            }
            push_hex(&mut class, this);
            class.push('-');
            push_hex(&mut class, that);
        } else {
            push_hex(&mut class, this);
        }
        items += 1;
    }
    if k != body.len() {
        // Cannot happen: the glob scanner and Python agree on where the set
        // ends. Refuse rather than guess.
        return Err("bracket expression ends before its closing bracket".to_owned());
    }
    class.push(']');
    out.push_str(&class);
    Ok(())
}

/// How a class character appears in the regex Python sees (backslashes are
/// doubled by pathspec).
fn py_class_text(c: char) -> String {
    if c == '\\' {
        "\\\\".to_owned()
    } else {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> ExcludeSet {
        ExcludeSet::new(patterns).unwrap()
    }

    #[test]
    fn exclude_defaults() {
        let d = ExcludeSet::defaults();
        // Expected values from pathspec 1.1.1 (GitIgnoreSpec, "gitwildmatch").
        let cases = [
            ("foo.link", true),
            ("sub/step.abcd1234.link", true),
            ("foo.link.tmp", true),
            ("linked", false),
            (".git", true),
            (".git/config", true),
            ("sub/.git", true),
            ("sub/.git/HEAD", true),
            (".gitignore", false),
            ("x.pyc", true),
            ("dir/x.pyc", true),
            ("x.pyc.bak", false),
            ("file~", true),
            ("dir/file~", true),
            ("~", true),
            ("~file", false),
            ("src/main.rs", false),
            ("/abs/.git", true),
            ("/abs/foo.txt", false),
            ("", false),
        ];
        for (path, expected) in cases {
            assert_eq!(d.is_excluded(path), expected, "path {path:?}");
        }
    }

    #[test]
    fn exclude_tricky_cases() {
        // (patterns, path, expected) — expected values obtained by running
        // pathspec 1.1.1's GitIgnoreSpec.from_lines("gitwildmatch", ...).match_file.
        let cases: &[(&[&str], &str, bool)] = &[
            (&["dir/", "!dir/file"], "dir/file", false),
            (&["!dir/file", "dir/"], "dir/file", false),
            (&["dir/"], "dir", false),
            (&["dir/"], "dir/sub/file", true),
            (&["a/**/b"], "a/x/y/b", true),
            (&["a/**/b"], "a/b", true),
            (&["a/**"], "a", false),
            (&["/foo"], "bar/foo", false),
            (&["/foo"], "/foo", true),
            (&["foo"], "//foo", false),
            (&["foo"], "./foo", true),
            (&["foo"], "foo\n", true),
            (&["*"], "", false),
            (&["[!a]"], "b", true),
            (&["[!a]"], "a", false),
            (&["[]a]"], "]", true),
            (&["[[:alpha:]]"], "a]", true),
            (&["[[:alpha:]]"], "a", false),
            (&["x["], "x[", false),
            (&["\\*"], "*", true),
            (&["\\*"], "a", false),
            (&["trail\\ "], "trail ", true),
            (&["trail   "], "trail", true),
            (&["trail\u{1f}"], "trail", true),
            (&["#comment"], "#comment", false),
            (&["\\#comment"], "#comment", true),
            (&["foo[!a]bar"], "foo/bar", true),
            (&["ünï*"], "dir/ünïcödé", true),
            (&["?"], "日", true),
            (&["*", "!*/"], "a/b", true),
            (&["**/", "!a/"], "a/b", false),
        ];
        for (patterns, path, expected) in cases {
            assert_eq!(
                set(patterns).is_excluded(path),
                *expected,
                "patterns {patterns:?} path {path:?}"
            );
        }
    }

    #[test]
    fn exclude_empty_list_excludes_nothing() {
        let s = ExcludeSet::new::<&str>(&[]).unwrap();
        assert!(!s.is_excluded("foo.link"));
        assert!(!s.is_excluded(".git"));
    }

    #[test]
    fn exclude_noops() {
        for p in ["", "   ", "#x", "/", "[", "x[!]", "a[]b"] {
            let s = set(&[p]);
            assert!(s.rules.is_empty(), "{p:?}");
            assert!(!s.is_excluded("x"));
        }
    }

    #[test]
    fn exclude_errors_name_the_pattern() {
        for p in ["!", "! ", "foo\\", "a\\/b", "[z-a]", "[a-\\]", "[a--]"] {
            match ExcludeSet::new(&["ok", p]) {
                Err(ExcludeError::Invalid { pattern, .. }) => assert_eq!(pattern, p),
                Ok(_) => panic!("{p:?} should be rejected"),
            }
        }
        let msg = ExcludeSet::new(&["foo\\"]).unwrap_err().to_string();
        assert!(msg.contains("\"foo\\\\\""), "{msg}");
    }

    #[test]
    fn exclude_regex_translation() {
        // Same shape as pathspec's regexes (modulo literal spelling).
        assert_eq!(
            pattern_to_regex("a/**/b").unwrap().unwrap().0,
            "^a(?:/.+)?/b(?:(?P<ps_d>/)|\\n?\\z)"
        );
        assert_eq!(
            pattern_to_regex("foo/").unwrap().unwrap().0,
            "^(?:.+/)?foo(?P<ps_d>/)"
        );
        assert_eq!(
            pattern_to_regex("!*/").unwrap().unwrap(),
            ("(?P<ps_d>/)".to_owned(), false)
        );
        assert_eq!(pattern_to_regex("**/**").unwrap().unwrap().0, ".");
    }
}
