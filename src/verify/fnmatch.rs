//! Python's `fnmatch.fnmatchcase`, as CPython 3.11 implements it (and as
//! in-toto 3.1.0 uses it, through `fnmatch.filter` on POSIX, to apply artifact
//! rule patterns).
//!
//! The pattern is translated the way `fnmatch.translate` does it, token by
//! token: `*` matches any run of characters, `/` and newlines included; `?`
//! matches one character; `[seq]` / `[!seq]` match one character in / not in
//! `seq` (a `]` right after `[` or `[!` belongs to `seq`; `-` forms ranges;
//! reversed ranges are dropped the way CPython drops them, so `[b-a]` never
//! matches and `[!b-a]` matches any character); a `[` without a closing `]` is
//! a literal `[` (so `[]` and `[!]` alone are literal text). There is no
//! escaping: a backslash is an ordinary character. The match is anchored at
//! both ends and case-sensitive.
//!
//! The translated tokens are matched with the `regex` crate. CPython wraps
//! every interior `*fixed` in an atomic group; since every token but `*`
//! matches exactly one character, that changes only speed, never the result,
//! so plain `.*` is used here.

use regex::Regex;

/// One translated pattern token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*` (consecutive stars are compressed, as in CPython).
    Star,
    /// `?`, or `[!]`.
    Any,
    /// A literal character.
    Literal(char),
    /// A bracket expression: matches one character in (or, negated, not in)
    /// the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// An empty bracket expression (`(?!)` in CPython): never matches.
    Never,
}

impl Token {
    fn matches_char(&self, c: char) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Literal(l) => *l == c,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            Token::Never => false,
        }
    }
}

/// A compiled shell pattern with `fnmatch.fnmatchcase` semantics.
#[derive(Debug, Clone)]
pub struct Pattern {
    pattern: String,
    tokens: Vec<Token>,
    /// `None` when the pattern can never match (it holds an empty bracket
    /// expression), or in the unlikely case the regex exceeds the `regex`
    /// crate's size limits (then `tokens` are matched directly).
    regex: Option<Regex>,
}

impl Pattern {
    /// Compiles `pattern`. Every string is a valid pattern.
    pub fn new(pattern: &str) -> Pattern {
        let tokens = translate(pattern);
        let regex = if tokens.contains(&Token::Never) {
            None
        } else {
            regex::RegexBuilder::new(&to_regex(&tokens))
                .size_limit(1 << 26)
                .build()
                .ok()
        };
        Pattern {
            pattern: pattern.to_owned(),
            tokens,
            regex,
        }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True if `name` matches the whole pattern (`fnmatch.fnmatchcase`).
    pub fn matches(&self, name: &str) -> bool {
        match &self.regex {
            Some(regex) => regex.is_match(name),
            None if self.tokens.contains(&Token::Never) => false,
            None => match_tokens(&self.tokens, name),
        }
    }
}

/// `fnmatch.fnmatchcase(name, pattern)` of CPython 3.11 (which is also what
/// `fnmatch.fnmatch` and `fnmatch.filter` do on POSIX).
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    Pattern::new(pattern).matches(name)
}

/// Port of the first pass of CPython 3.11's `fnmatch.translate`.
fn translate(pat: &str) -> Vec<Token> {
    let p: Vec<char> = pat.chars().collect();
    let n = p.len();
    let mut res: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < n {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if res.last() != Some(&Token::Star) {
                    res.push(Token::Star);
                }
            }
            '?' => res.push(Token::Any),
            '[' => {
                let mut j = i;
                if j < n && p[j] == '!' {
                    j += 1;
                }
                if j < n && p[j] == ']' {
                    j += 1;
                }
                while j < n && p[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    res.push(Token::Literal('['));
                } else {
                    res.push(bracket(&p[i..j]));
                    i = j + 1;
                }
            }
            _ => res.push(Token::Literal(c)),
        }
    }
    res
}

/// The token for the bracket expression whose contents (between `[` and the
/// closing `]`) are `p`: CPython's `translate` builds a `re` character set
/// from them, which `re` then parses. Both steps are ported literally.
fn bracket(p: &[char]) -> Token {
    let escape = |chunk: &[char], hyphens: bool| -> Vec<char> {
        let mut out = Vec::with_capacity(chunk.len());
        for &c in chunk {
            if c == '\\' || (hyphens && c == '-') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let mut stuff: Vec<char> = if !p.contains(&'-') {
        escape(p, false)
    } else {
        let j = p.len();
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut i = 0;
        let mut k = if p[0] == '!' { 2 } else { 1 };
        // `pat.find('-', k, j)`, then `k = found + 3`.
        while let Some(found) = (k.min(j)..j).find(|&x| p[x] == '-') {
            chunks.push(p[i..found].to_vec());
            i = found + 1;
            k = found + 3;
        }
        let chunk = p[i..j].to_vec();
        if !chunk.is_empty() {
            chunks.push(chunk);
        } else {
            chunks.last_mut().expect("a hyphen made a chunk").push('-');
        }
        // Remove empty ranges -- invalid in RE.
        for k in (1..chunks.len()).rev() {
            let prev_last = *chunks[k - 1].last().expect("chunks are not empty");
            if prev_last > chunks[k][0] {
                let mut merged = chunks[k - 1][..chunks[k - 1].len() - 1].to_vec();
                merged.extend_from_slice(&chunks[k][1..]);
                chunks[k - 1] = merged;
                chunks.remove(k);
            }
        }
        let mut stuff = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            if n > 0 {
                stuff.push('-');
            }
            stuff.extend(escape(chunk, true));
        }
        stuff
    };
    // Escape set operations (&&, ~~ and ||).
    stuff = stuff
        .into_iter()
        .flat_map(|c| {
            if matches!(c, '&' | '~' | '|') {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect();
    if stuff.is_empty() {
        return Token::Never;
    }
    if stuff == ['!'] {
        return Token::Any;
    }
    let negated = stuff[0] == '!';
    let content: &[char] = if negated { &stuff[1..] } else { &stuff };
    // (A leading `^` or `[` gets escaped by CPython: a literal either way.)

    // `re`'s set parser on `content`: atoms are single characters or
    // backslash escapes (here only ever of punctuation: literals); an
    // unescaped `-` between two atoms makes a range. CPython never produces
    // a trailing unescaped `-` or a reversed range.
    let mut ranges = Vec::new();
    let mut x = 0;
    let atom = |x: &mut usize| -> char {
        if content[*x] == '\\' && *x + 1 < content.len() {
            *x += 2;
            content[*x - 1]
        } else {
            *x += 1;
            content[*x - 1]
        }
    };
    while x < content.len() {
        let lo = atom(&mut x);
        if x + 1 < content.len() && content[x] == '-' {
            x += 1;
            let hi = atom(&mut x);
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
    Token::Class { negated, ranges }
}

/// The regex for tokens free of `Never`: anchored at both ends, `.` matching
/// newlines, every class member spelled as an `\x{..}` escape.
fn to_regex(tokens: &[Token]) -> String {
    let mut re = String::from(r"\A(?s:");
    for token in tokens {
        match token {
            Token::Star => re.push_str(".*"),
            Token::Any => re.push('.'),
            Token::Literal(c) => re.push_str(&regex::escape(c.encode_utf8(&mut [0u8; 4]))),
            Token::Class { negated, ranges } => {
                re.push('[');
                if *negated {
                    re.push('^');
                }
                for &(lo, hi) in ranges {
                    if lo == hi {
                        re.push_str(&format!(r"\x{{{:X}}}", lo as u32));
                    } else {
                        re.push_str(&format!(r"\x{{{:X}}}-\x{{{:X}}}", lo as u32, hi as u32));
                    }
                }
                re.push(']');
            }
            Token::Never => unreachable!("patterns with empty classes never reach the regex"),
        }
    }
    re.push_str(r")\z");
    re
}

/// Direct matcher (the classic star-backtracking glob loop, correct because
/// every other token matches exactly one character); used only when the
/// regex could not be built.
fn match_tokens(tokens: &[Token], name: &str) -> bool {
    let s: Vec<char> = name.chars().collect();
    let (mut t, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if t < tokens.len() && tokens[t] == Token::Star {
            star = Some((t, i));
            t += 1;
        } else if t < tokens.len() && tokens[t].matches_char(s[i]) {
            t += 1;
            i += 1;
        } else if let Some((st, si)) = star {
            t = st + 1;
            i = si + 1;
            star = Some((st, si + 1));
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_everything_including_slashes_and_newlines() {
        assert!(fnmatch("a/b/c.txt", "*.txt"));
        assert!(fnmatch("", "*"));
        assert!(fnmatch("x\ny", "x*y"));
        assert!(fnmatch("dir/sub/file", "dir/*"));
        assert!(!fnmatch("dir", "dir/*"));
        assert!(fnmatch("abcabc", "*a*c"));
        assert!(fnmatch("aaa", "**a**a**"));
    }

    #[test]
    fn question_mark_and_anchoring() {
        assert!(fnmatch("a/b", "a?b"));
        assert!(!fnmatch("ab", "a?b"));
        assert!(!fnmatch("foo\n", "foo"));
        assert!(!fnmatch("xfoo", "foo"));
        assert!(!fnmatch("FOO", "foo"), "case-sensitive");
        assert!(fnmatch("ü", "?"));
    }

    #[test]
    fn brackets() {
        assert!(fnmatch("b", "[abc]"));
        assert!(!fnmatch("d", "[abc]"));
        assert!(fnmatch("d", "[!abc]"));
        assert!(fnmatch("/", "[!a]"));
        assert!(fnmatch("]", "[]]"));
        assert!(fnmatch("]", "[]a]"));
        assert!(!fnmatch("]", "[!]a]"));
        assert!(fnmatch("b", "[a-c]"));
        assert!(fnmatch("-", "[a-]"));
        assert!(fnmatch("-", "[-a]"));
        assert!(fnmatch("-", "[!-]x").eq(&false));
        assert!(fnmatch("^", "[^]"));
        assert!(fnmatch("\\", "[\\]"));
        assert!(fnmatch("&", "[&&]"));
        assert!(fnmatch("[", "[[]"));
    }

    #[test]
    fn degenerate_brackets() {
        // Unterminated: a literal `[`.
        assert!(fnmatch("[", "["));
        assert!(fnmatch("[ab", "[ab"));
        assert!(fnmatch("x[", "x["));
        // `[]` and `[!]` are unterminated unless a later `]` closes them.
        assert!(fnmatch("[]", "[]"));
        assert!(fnmatch("[!]", "[!]"));
        assert!(fnmatch("]", "[]]"));
        // `[!]]` is a class of one excluded `]`.
        assert!(fnmatch("a", "[!]]"));
        // Reversed range: dropped, never matches.
        assert!(!fnmatch("a", "[z-a]"));
        assert!(!fnmatch("z", "[z-a]"));
        assert!(!fnmatch("-", "[z-a]"));
        // `[!z-a]`: CPython's chunks leave `!` alone, so any character.
        assert!(fnmatch("q", "[!z-a]"));
    }

    #[test]
    fn no_escaping() {
        assert!(fnmatch("\\*", "\\*"));
        assert!(fnmatch("\\abc", "\\*"));
        assert!(!fnmatch("*", "\\*"));
        assert!(fnmatch("a.b", "a.b"));
        assert!(!fnmatch("axb", "a.b"));
        assert!(fnmatch("(x)", "(x)"));
    }

    #[test]
    fn fallback_matcher_agrees() {
        for (name, pat) in [
            ("abc", "a*c"),
            ("abc", "*b"),
            ("a/b/c", "*/*"),
            ("", "*"),
            ("", "?"),
            ("x", "[!a]"),
            ("abcab", "*ab"),
        ] {
            let tokens = translate(pat);
            assert_eq!(
                match_tokens(&tokens, name),
                fnmatch(name, pat),
                "{name:?} {pat:?}"
            );
        }
    }
}
