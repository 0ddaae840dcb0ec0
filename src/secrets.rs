//! Secrets in the runtime trace (docs/secrets.md). The trace is
//! published beside the link, so before it is written every secret in it is
//! replaced by a marker, never by a digest (a sha256 of a short password is
//! a lookup away).
//!
//! What is secret:
//! - a variable whose *name* says so: the name is split into components at
//!   every character that is not an ASCII letter or digit (`_` in practice)
//!   and a rule matches whole components, case-insensitively ([`secret_name`]);
//! - the parts of any string that look secret whatever holds them
//!   ([`shapes`]): a URL's userinfo password, a well-known token prefix, a
//!   JWT, a PEM private key, an `Authorization:` header's credentials;
//! - what the user says (`--redact-env NAME`), minus what the user says is
//!   not (`--keep-env NAME`): [`Policy`].
//!
//! A secret variable's value is replaced by `<redacted:NAME>` in the
//! published environment. Every occurrence of a secret of at least
//! [`MIN_ANYWHERE`] bytes, as a whole token ([`whole_token`]), is replaced by
//! the same marker in every other string of the trace (argv, other
//! variables, paths, the trace's copy of the command), and from
//! [`MIN_INSIDE_WORDS`] bytes every occurrence at all; shorter ones only as
//! their variable's whole value, so that `1` and `-O1` stay. Shapes found in
//! a string become `<redacted>` (or their variable's marker when they came
//! from one).
//!
//! This module is string logic only: it reads no environment of its own
//! (callers pass it), and knows nothing of recording, processes, FUSE, links
//! or keys.

use base64::Engine as _;
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

/// Secret values at least this long are replaced wherever they occur as a
/// whole token; shorter ones only as their variable's whole value.
pub const MIN_ANYWHERE: usize = 8;

/// Secret values at least this long are replaced wherever they occur, even
/// inside a longer word (`-p$MYSQL_PWD`, `x$TOKEN`): an accidental match of
/// 16 bytes is implausible, while for shorter ones (`postgres` as a
/// password) replacing inside words would mangle unrelated text and reveal
/// by the leftovers what the secret is a part of.
pub const MIN_INSIDE_WORDS: usize = 16;

/// Pieces of a secret between whitespace or `/` (a PEM body line, a base64
/// blob, the part of a line before a `/`) are replaced on their own from
/// this length: what unquoted shell expansion (`echo $KEY`) scatters over
/// several arguments, and what a path lookup (`test -e "$KEY"`) keeps of a
/// value up to its first `/`.
pub const MIN_FRAGMENT: usize = 16;

/// The marker for values that are not tied to a variable.
pub const MARKER: &str = "<redacted>";

/// The marker that replaces the value of variable `name`, and every other
/// occurrence of it.
pub fn marker(name: &str) -> String {
    format!("<redacted:{name}>")
}

/// Components that make a name secret wherever they stand (also plural).
const WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "JWT",
    "PAT",
    "COOKIE",
    "PRIVATE",
];

/// Endings that make a component secret (`NPMTOKEN`, `CLIENTSECRET`,
/// `DBPASSWORD`, `APIKEY`); `KEY` alone is not one (`MONKEY`).
const SUFFIXES: &[&str] = &["TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY"];

/// Last components that say the value is a location, not a secret:
/// `PATH`, `LD_LIBRARY_PATH`, `SSH_KEY_PATH`, `KEY_DIR`,
/// `MYSQL_PASSWORD_FILE` (Docker's `_FILE` convention), `SSH_AUTH_SOCK`.
const LOCATIONS: &[&str] = &["PATH", "DIR", "FILE", "SOCK"];

/// Whether a variable's name says its value is secret (docs/secrets.md):
/// a component is one of `WORDS` (or its plural), or ends with one of
/// `SUFFIXES`; `SESSION` counts only as the last component (a session's
/// own value: `CI_SESSION`; not an attribute of one: `XDG_SESSION_ID`,
/// `XDG_SESSION_TYPE`, `DBUS_SESSION_BUS_ADDRESS`, `SESSION_MANAGER`);
/// `PWD` only as the last component of a longer name (`MYSQL_PWD`; not
/// `PWD`, `OLDPWD`). Names whose last component is one of `LOCATIONS`
/// never match, nor do `HOME`, `KEYBOARD`, `MONKEY`, `GIT_AUTHOR_NAME`.
pub fn secret_name(name: &str) -> bool {
    let parts: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let Some(last) = parts.last() else {
        return false;
    };
    if LOCATIONS.contains(&last.as_str()) {
        return false;
    }
    parts.iter().enumerate().any(|(i, part)| {
        let is_last = i + 1 == parts.len();
        let singular = part.strip_suffix('S').filter(|s| !s.is_empty());
        let is = |word: &str| part == word || singular == Some(word);
        WORDS.iter().any(|&w| is(w))
            || (is_last && is("SESSION"))
            || (is_last && parts.len() > 1 && part == "PWD")
            || SUFFIXES
                .iter()
                .any(|s| part.ends_with(s) || singular.is_some_and(|p| p.ends_with(s)))
    })
}

/// What a part of a string looks like, when it looks secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// The password of a URL's userinfo (`postgres://u:PASSWORD@h/db`).
    UrlPassword,
    /// A token with a well-known prefix (GitHub, GitLab, Slack, AWS key id).
    Token,
    /// A JSON Web Token.
    Jwt,
    /// A PEM private key block, from its BEGIN line to its END line.
    PrivateKey,
    /// The credentials of an `Authorization:` header.
    Authorization,
}

impl Shape {
    pub fn describe(self) -> &'static str {
        match self {
            Shape::UrlPassword => "a URL password",
            Shape::Token => "a token with a well-known prefix",
            Shape::Jwt => "a JWT",
            Shape::PrivateKey => "a PEM private key",
            Shape::Authorization => "Authorization header credentials",
        }
    }
}

/// A part of a string (byte offsets) that looks secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub shape: Shape,
}

/// Every part of `s` that looks secret whatever holds it (they may overlap).
pub fn shapes(s: &str) -> Vec<Span> {
    let mut out = Vec::new();
    // Every string of a trace goes through here (paths, argv, digests):
    // shapes that need a byte the string lacks are not looked for.
    let bytes = s.as_bytes();
    let colon = bytes.contains(&b':');
    if colon {
        url_passwords(s, &mut out);
    }
    tokens(s, &mut out);
    if bytes.contains(&b'.') {
        jwts(s, &mut out);
    }
    if bytes.contains(&b'-') {
        private_keys(s, &mut out);
    }
    if colon {
        authorizations(s, &mut out);
    }
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether `s[start..end]` stands as a whole token: at each end of the
/// match, the string ends, or the character just outside the match or the
/// match's own edge character is not alphanumeric (a value that begins or
/// ends with punctuation is bounded by it). So `12345678` is whole in
/// `a=12345678;` and `x_12345678_y` but not in `123456789`; `p@ss-w0rd!` is
/// whole in `=p@ss-w0rd!y`, `p@ss-w0rd` is not in `=p@ss-w0rdy`.
/// Alphanumeric means ASCII letters and digits: `_`, `-`, `.`, `/`, spaces
/// and every non-ASCII character are boundaries.
pub fn whole_token(s: &str, start: usize, end: usize) -> bool {
    let b = s.as_bytes();
    debug_assert!(start < end && end <= b.len());
    let left = start == 0 || !is_word(b[start - 1]) || !is_word(b[start]);
    let right = end == b.len() || !is_word(b[end]) || !is_word(b[end - 1]);
    left && right
}

/// The password part of every `scheme://user:password@host` in `s` (the
/// last `@` of the authority ends the userinfo: unencoded `@` in passwords
/// are common). `https://user@host` has none.
fn url_passwords(s: &str, out: &mut Vec<Span>) {
    let mut from = 0;
    while let Some(i) = s[from..].find("://") {
        let start = from + i + 3;
        let rest = &s[start..];
        let len = rest
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | '\\')
                    || c.is_whitespace()
            })
            .unwrap_or(rest.len());
        let authority = &rest[..len];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
            && colon + 1 < at
        {
            out.push(Span {
                start: start + colon + 1,
                end: start + at,
                shape: Shape::UrlPassword,
            });
        }
        from = start;
    }
}

/// GitHub (`ghp_` `gho_` `ghu_` `ghs_` `ghr_`, `github_pat_`), GitLab
/// (`glpat-`), Slack (`xox?-`) tokens and AWS access key ids (`AKIA`,
/// `ASIA` and 16 more capitals or digits).
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"|github_pat_[A-Za-z0-9_]{20,}",
        r"|glpat-[A-Za-z0-9_\-]{20,}",
        r"|xox[a-z]-[A-Za-z0-9\-]{10,}",
        r"|(?:AKIA|ASIA)[A-Z0-9]{16}",
    ))
    .expect("a valid pattern")
});

fn tokens(s: &str, out: &mut Vec<Span>) {
    let b = s.as_bytes();
    for m in TOKEN.find_iter(s) {
        let left = m.start() == 0 || !is_word(b[m.start() - 1]);
        let right = m.end() == b.len() || !is_word(b[m.end()]);
        if left && right {
            out.push(Span {
                start: m.start(),
                end: m.end(),
                shape: Shape::Token,
            });
        }
    }
}

/// Three (JWS) or five (JWE) base64url parts joined by dots, the first of
/// which decodes to a JSON object with an `alg`.
fn jwts(s: &str, out: &mut Vec<Span>) {
    let b = s.as_bytes();
    let jwt_char = |c: u8| is_word(c) || c == b'-' || c == b'_' || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if !jwt_char(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && jwt_char(b[i]) {
            i += 1;
        }
        let run = &s[start..i];
        let lead = run.len() - run.trim_start_matches('.').len();
        let run = &run[lead..];
        // An unsigned JWT ends with its (empty) third part's dot; a sentence
        // may end with a dot after a signed one.
        let found = [run, run.trim_end_matches('.')]
            .into_iter()
            .find(|candidate| is_jwt(candidate));
        if let Some(jwt) = found {
            out.push(Span {
                start: start + lead,
                end: start + lead + jwt.len(),
                shape: Shape::Jwt,
            });
        }
    }
}

fn is_jwt(run: &str) -> bool {
    let dots = run.bytes().filter(|&c| c == b'.').count();
    if dots != 2 && dots != 4 {
        return false;
    }
    let parts: Vec<&str> = run.split('.').collect();
    if !matches!(parts.len(), 3 | 5) || parts[0].len() < 8 || parts[1].is_empty() {
        return false;
    }
    let Ok(header) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0]) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, Value>>(&header)
        .is_ok_and(|h| h.contains_key("alg"))
}

/// `-----BEGIN ... PRIVATE KEY-----` up to the end of its END line (to the
/// end of the string when the END line is missing).
fn private_keys(s: &str, out: &mut Vec<Span>) {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let mut from = 0;
    while let Some(i) = s[from..].find(BEGIN) {
        let begin = from + i;
        let label_start = begin + BEGIN.len();
        let Some(label_len) = s[label_start..].find("-----") else {
            break;
        };
        let label = &s[label_start..label_start + label_len];
        if label.len() > 64 || !label.contains("PRIVATE KEY") {
            from = label_start;
            continue;
        }
        let after = label_start + label_len + 5;
        let end = match s[after..].find(END) {
            Some(j) => {
                let end_label = after + j + END.len();
                match s[end_label..].find("-----") {
                    Some(k) => end_label + k + 5,
                    None => s.len(),
                }
            }
            None => s.len(),
        };
        out.push(Span {
            start: begin,
            end,
            shape: Shape::PrivateKey,
        });
        from = end;
    }
}

/// `Authorization: [Bearer|Basic|Token|Bot] CREDENTIALS` (curl -H, wget
/// --header, git -c http.extraHeader=...). A shell reference (`$TOKEN`)
/// is not a credential.
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)authorization\s*:\s*(?:(?:bearer|basic|token|bot)\s+)?([^\s"'$]{8,})"#)
        .expect("a valid pattern")
});

fn authorizations(s: &str, out: &mut Vec<Span>) {
    for caps in AUTHORIZATION.captures_iter(s) {
        if let Some(m) = caps.get(1) {
            out.push(Span {
                start: m.start(),
                end: m.end(),
                shape: Shape::Authorization,
            });
        }
    }
}

/// Which variables to treat as secret beyond the rules: `--redact-env`
/// names are redacted whatever their name and value, `--keep-env` names
/// are published as they are (their value is no secret: neither their
/// name nor its shape redacts it; another variable's secret inside it still
/// is). A name may not be in both.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    redact: BTreeSet<String>,
    keep: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("--redact-env {0} and --keep-env {0} contradict each other: give one of them for {0}")]
    Contradiction(String),
    #[error("--{flag} {name:?} is not an environment variable name (empty, or contains `=`)")]
    BadName { flag: &'static str, name: String },
}

impl Policy {
    pub fn new(redact: &[String], keep: &[String]) -> Result<Policy, PolicyError> {
        for (flag, names) in [("redact-env", redact), ("keep-env", keep)] {
            if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains('=')) {
                return Err(PolicyError::BadName {
                    flag,
                    name: bad.clone(),
                });
            }
        }
        let policy = Policy {
            redact: redact.iter().cloned().collect(),
            keep: keep.iter().cloned().collect(),
        };
        if let Some(both) = policy.redact.intersection(&policy.keep).next() {
            return Err(PolicyError::Contradiction(both.clone()));
        }
        Ok(policy)
    }

    /// Redacts `names` whole, whatever the rules say (a rerun redacts what
    /// its recording redacted).
    pub fn redacting(names: impl IntoIterator<Item = String>) -> Policy {
        Policy {
            redact: names.into_iter().collect(),
            keep: BTreeSet::new(),
        }
    }
}

/// Why a part of a string was replaced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Why {
    /// The value (or part of the value) of this variable.
    Variable(String),
    /// It looks secret.
    Shape(Shape),
}

/// One replacement in a string.
struct Hit {
    start: usize,
    end: usize,
    /// A variable's value wins over a shape for the same bytes.
    from_shape: bool,
    /// The variable the marker names (None: [`MARKER`]).
    name: Option<String>,
    why: Why,
}

/// The secrets of one environment, and the environment as the trace
/// publishes it.
#[derive(Debug)]
pub struct Redaction {
    environment: BTreeMap<String, String>,
    redacted: BTreeMap<String, String>,
    /// Secret texts of at least [`MIN_ANYWHERE`] bytes, replaced wherever
    /// they occur as whole tokens (from [`MIN_INSIDE_WORDS`], wherever they
    /// occur).
    anywhere: Vec<String>,
    /// Every secret text (any length) -> the variables it came from, in the
    /// order learnt.
    sources: HashMap<String, Vec<String>>,
    /// Secret text -> the variable its markers name: one whose whole value
    /// it is, else the first it was learnt from.
    names: HashMap<String, String>,
    /// Secret-looking texts in `--keep-env` variables: not redacted.
    kept: HashSet<String>,
}

impl Redaction {
    /// Finds the secrets of `env` (the recorded command's environment)
    /// under `policy`.
    pub fn new(env: impl IntoIterator<Item = (String, String)>, policy: &Policy) -> Redaction {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let mut r = Redaction {
            environment: BTreeMap::new(),
            redacted: BTreeMap::new(),
            anywhere: Vec::new(),
            sources: HashMap::new(),
            names: HashMap::new(),
            kept: HashSet::new(),
        };
        let mut whole: BTreeMap<&str, &'static str> = BTreeMap::new();
        for (name, value) in &env {
            if value.is_empty() {
                continue;
            }
            if policy.keep.contains(name) {
                for span in shapes(value) {
                    r.kept.insert(value[span.start..span.end].to_string());
                }
                continue;
            }
            let why = if policy.redact.contains(name) {
                Some("--redact-env")
            } else if secret_name(name) {
                Some("its name")
            } else {
                None
            };
            if let Some(why) = why {
                whole.insert(name, why);
                r.learn(name, value);
            } else {
                for span in shapes(value) {
                    r.learn(name, &value[span.start..span.end]);
                }
            }
        }
        // Longest first: where secrets overlap, the longest names the marker.
        r.anywhere
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        for (text, sources) in &r.sources {
            let name = sources
                .iter()
                .find(|n| env.get(*n) == Some(text))
                .unwrap_or(&sources[0]);
            r.names.insert(text.clone(), name.clone());
        }
        for (name, value) in &env {
            if let Some(why) = whole.get(name.as_str()) {
                r.environment.insert(name.clone(), marker(name));
                r.redacted.insert(name.clone(), why.to_string());
                continue;
            }
            let shaped = !policy.keep.contains(name);
            match r.replace(value, shaped, Some(name)) {
                (Some(published), whys) => {
                    r.redacted.insert(name.clone(), describe(name, &whys));
                    r.environment.insert(name.clone(), published);
                }
                (None, _) => {
                    r.environment.insert(name.clone(), value.clone());
                }
            }
        }
        r
    }

    /// Remembers `text` (from variable `name`) as a secret, with the forms
    /// it takes when a shell expands it unquoted (whitespace trimmed and
    /// collapsed, split into words) or a path is made of it (split at `/`):
    /// the pieces from [`MIN_FRAGMENT`] bytes.
    fn learn(&mut self, name: &str, text: &str) {
        let mut forms = vec![text.to_string()];
        let words: Vec<&str> = text.split_whitespace().collect();
        forms.push(words.join(" "));
        let pieces = text.split(|c: char| c.is_whitespace() || c == '/');
        forms.extend(
            words
                .iter()
                .copied()
                .chain(pieces)
                .filter(|piece| piece.len() >= MIN_FRAGMENT && piece.len() < text.len())
                .map(str::to_string),
        );
        for form in forms {
            if form.is_empty() {
                continue;
            }
            let sources = self.sources.entry(form.clone()).or_default();
            if sources.is_empty() && form.len() >= MIN_ANYWHERE {
                self.anywhere.push(form);
            }
            if !sources.iter().any(|n| n == name) {
                sources.push(name.to_string());
            }
        }
    }

    /// The environment as the trace publishes it.
    pub fn environment(&self) -> &BTreeMap<String, String> {
        &self.environment
    }

    /// The variables whose published value is not their value, with why.
    pub fn redacted(&self) -> &BTreeMap<String, String> {
        &self.redacted
    }

    /// `s` with every secret replaced.
    pub fn scrub<'a>(&self, s: &'a str) -> Cow<'a, str> {
        match self.replace(s, true, None).0 {
            Some(out) => Cow::Owned(out),
            None => Cow::Borrowed(s),
        }
    }

    /// Scrubs every string of `value`, object keys included; returns how
    /// many strings changed.
    pub fn scrub_json(&self, value: &mut Value) -> usize {
        match value {
            Value::String(s) => match self.replace(s, true, None).0 {
                Some(out) => {
                    *s = out;
                    1
                }
                None => 0,
            },
            Value::Array(items) => items.iter_mut().map(|v| self.scrub_json(v)).sum(),
            Value::Object(map) => {
                let mut changed = 0;
                for (key, mut v) in std::mem::take(map) {
                    changed += self.scrub_json(&mut v);
                    let key = match self.replace(&key, true, None).0 {
                        Some(out) => {
                            changed += 1;
                            out
                        }
                        None => key,
                    };
                    map.insert(key, v);
                }
                changed
            }
            _ => 0,
        }
    }

    /// The variable a marker for `text` names: `own` (the variable whose
    /// value is being published) when the text came from it.
    fn name_of(&self, text: &str, own: Option<&str>) -> Option<String> {
        let sources = self.sources.get(text)?;
        match own {
            Some(own) if sources.iter().any(|n| n == own) => Some(own.to_string()),
            _ => self.names.get(text).cloned(),
        }
    }

    /// `s` with known secrets (and, with `shaped`, secret-looking parts)
    /// replaced: None when nothing was. `own`: the variable `s` is the
    /// value of.
    fn replace(&self, s: &str, shaped: bool, own: Option<&str>) -> (Option<String>, BTreeSet<Why>) {
        let mut hits = Vec::new();
        for text in &self.anywhere {
            let mut from = 0;
            while let Some(i) = s[from..].find(text.as_str()) {
                let start = from + i;
                let end = start + text.len();
                if text.len() >= MIN_INSIDE_WORDS || whole_token(s, start, end) {
                    let name = self.name_of(text, own);
                    hits.push(Hit {
                        start,
                        end,
                        from_shape: false,
                        why: Why::Variable(name.clone().unwrap_or_default()),
                        name,
                    });
                }
                from = start + s[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if shaped {
            for span in shapes(s) {
                let text = &s[span.start..span.end];
                if self.kept.contains(text) {
                    continue;
                }
                let name = self.name_of(text, own);
                let why = match &name {
                    Some(name) if Some(name.as_str()) != own => Why::Variable(name.clone()),
                    _ => Why::Shape(span.shape),
                };
                hits.push(Hit {
                    start: span.start,
                    end: span.end,
                    from_shape: true,
                    name,
                    why,
                });
            }
        }
        if hits.is_empty() {
            return (None, BTreeSet::new());
        }
        // Overlapping hits merge into one replacement (nothing of either
        // survives), marked as the first, longest, non-shape one.
        hits.sort_by(|a, b| {
            (a.start, std::cmp::Reverse(a.end), a.from_shape).cmp(&(
                b.start,
                std::cmp::Reverse(b.end),
                b.from_shape,
            ))
        });
        let mut out = String::with_capacity(s.len());
        let mut whys = BTreeSet::new();
        let mut done = 0;
        let mut i = 0;
        while i < hits.len() {
            let first = &hits[i];
            let mut end = first.end;
            whys.insert(first.why.clone());
            let mut j = i + 1;
            while j < hits.len() && hits[j].start < end {
                end = end.max(hits[j].end);
                whys.insert(hits[j].why.clone());
                j += 1;
            }
            out.push_str(&s[done..first.start]);
            match &first.name {
                Some(name) => out.push_str(&marker(name)),
                None => out.push_str(MARKER),
            }
            done = end;
            i = j;
        }
        out.push_str(&s[done..]);
        (Some(out), whys)
    }
}

/// Why variable `name`'s value was changed, for the trace: the shapes found
/// in it, and the other variables whose secrets it holds.
fn describe(name: &str, whys: &BTreeSet<Why>) -> String {
    let mut parts = Vec::new();
    for why in whys {
        match why {
            Why::Shape(shape) => parts.push(format!("its value holds {}", shape.describe())),
            Why::Variable(other) if other != name => {
                parts.push(format!("its value holds the value of {other}"));
            }
            Why::Variable(_) => {}
        }
    }
    parts.dedup();
    if parts.is_empty() {
        parts.push("its value holds a secret".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn jwt() -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#),
            b64(r#"{"sub":"job_42","iss":"gitlab.example.com","exp":1900000000}"#),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        )
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2\n\
        OF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n\
        1RTwjmYSi9R/zpBnuQ4EiMnCqfMPWiZqB4QdbAd0E7oH50VpuZ1P087G\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn names_match_whole_components() {
        for secret in [
            "API_TOKEN",
            "token",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "MYSQL_PASSWORD",
            "MYSQL_PWD",
            "PGPASSWORD",
            "DB_PASSWD",
            "SMTP_PASS",
            "SSH_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "DOCKER_CREDENTIAL",
            "NPM_CONFIG__AUTH",
            "CI_JOB_JWT",
            "GH_PAT",
            "SESSION_COOKIE",
            "CI_SESSION",
            "SESSION",
            "DEPLOY_PRIVATE",
            "API_KEYS",
            "NPMTOKEN",
            "OAUTH_CLIENTSECRET",
            "MY_APIKEY",
            "npm_config_//registry.npmjs.org/:_authToken",
            "AWS_SESSION_TOKEN",
            "XDG_SESSION_COOKIE",
        ] {
            assert!(secret_name(secret), "{secret} should be secret");
        }
        for plain in [
            "PATH",
            "LD_LIBRARY_PATH",
            "SSH_KEY_PATH",
            "SECRET_PATH",
            "MYSQL_PASSWORD_FILE",
            "KEY_DIR",
            "SSH_AUTH_SOCK",
            "PWD",
            "OLDPWD",
            "PWD_SAVED",
            "HOME",
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_ASKPASS",
            "XDG_SESSION_ID",
            "XDG_SESSION_TYPE",
            "XDG_SESSION_CLASS",
            "XDG_SESSION_DESKTOP",
            "DBUS_SESSION_BUS_ADDRESS",
            "SESSION_MANAGER",
            "KEYBOARD",
            "MONKEY",
            "KEYRING_CONTROL",
            "TOKENIZER_MODEL",
            "COMPASS",
            "AUTHOR",
            "PATCH_LEVEL",
            "LANG",
            "",
            "_",
        ] {
            assert!(!secret_name(plain), "{plain} should not be secret");
        }
    }

    #[test]
    fn whole_tokens_are_bounded_by_non_alphanumerics_or_the_ends() {
        let at = |s: &str, needle: &str| {
            let i = s.find(needle).unwrap();
            whole_token(s, i, i + needle.len())
        };
        assert!(at("12345678", "12345678"));
        assert!(at("a=12345678;", "12345678"));
        assert!(at("--token=12345678", "12345678"));
        assert!(at("x_12345678_y", "12345678"));
        assert!(at("/tmp/12345678/out", "12345678"));
        assert!(at("é12345678é", "12345678"));
        assert!(!at("123456789", "12345678"));
        assert!(!at("012345678", "12345678"));
        assert!(!at("abc12345678", "12345678"));
        // An edge of the value that is itself no letter or digit is a boundary.
        assert!(at("=p@ss-w0rd!y", "p@ss-w0rd!"));
        assert!(at("x-p@ss-w0rd", "-p@ss-w0rd"));
        assert!(!at("=p@ss-w0rdy", "p@ss-w0rd"));
        assert!(!at("xp@ss-w0rd!", "p@ss-w0rd!"));
    }

    fn shape_texts(s: &str) -> Vec<(Shape, &str)> {
        shapes(s)
            .into_iter()
            .map(|sp| (sp.shape, &s[sp.start..sp.end]))
            .collect()
    }

    #[test]
    fn url_userinfo_passwords_only() {
        assert_eq!(
            shape_texts("postgres://u:pw@h/db"),
            [(Shape::UrlPassword, "pw")]
        );
        assert_eq!(
            shape_texts("x=https://bob:p@ss:w0rd@git.example.com:8443/r.git?y"),
            [(Shape::UrlPassword, "p@ss:w0rd")]
        );
        assert_eq!(
            shape_texts("a://u:one@h,b://v:two@k"),
            [(Shape::UrlPassword, "one"), (Shape::UrlPassword, "two")]
        );
        for plain in [
            "https://user@host/x",
            "https://host/a:b@c",
            "https://user:@host/",
            "http://[::1]:8080/",
            "no url here: a@b",
        ] {
            assert_eq!(shape_texts(plain), [], "{plain}");
        }
    }

    #[test]
    fn well_known_token_prefixes() {
        let gh = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
        for token in [
            gh,
            "gho_0123456789abcdefghijABCDEFGHIJ012345",
            "ghs_0123456789abcdefghijABCDEFGHIJ012345",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "glpat-AbCdEfGhIjKlMnOpQrSt",
            "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
            "xoxp-1234567890-abc",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAIOSFODNN7EXAMPLE",
        ] {
            assert_eq!(
                shape_texts(&format!("--token={token} x")),
                [(Shape::Token, token)]
            );
        }
        for plain in [
            "ghp_short",
            "xghp_0123456789abcdefghijABCDEFGHIJ012345",
            "AKIAIOSFODNN7EXAMPLEX",
            "AKIAiosfodnn7example",
            "glpat-short",
            "xoxb-12",
        ] {
            assert_eq!(shape_texts(plain), [], "{plain}");
        }
    }

    #[test]
    fn jwts_need_an_alg_header() {
        let jwt = jwt();
        assert_eq!(
            shape_texts(&format!("Bearer {jwt}.")),
            [(Shape::Jwt, jwt.as_str())]
        );
        assert_eq!(
            shape_texts(&format!("token={jwt}&x=1")),
            [(Shape::Jwt, jwt.as_str())]
        );
        // Dotted names and base64 that is not a JOSE header are no JWT.
        for plain in [
            "libfoo.so.1",
            "a.b.c",
            "www.example.com",
            "eyJmb28iOiJiYXIifQ.eyJ4IjoxfQ.sig",
        ] {
            assert_eq!(shape_texts(plain), [], "{plain}");
        }
    }

    #[test]
    fn pem_private_keys_but_not_certificates() {
        let text = format!("key: {PEM}rest");
        assert_eq!(shape_texts(&text), [(Shape::PrivateKey, PEM.trim_end())]);
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(shape_texts(cert), []);
        let truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA";
        assert_eq!(shape_texts(truncated), [(Shape::PrivateKey, truncated)]);
    }

    #[test]
    fn authorization_headers() {
        assert_eq!(
            shape_texts("curl -H 'Authorization: Bearer abcdef0123456789' https://x"),
            [(Shape::Authorization, "abcdef0123456789")]
        );
        assert_eq!(
            shape_texts("http.extraHeader=AUTHORIZATION: basic dXNlcjpwYXNzd29yZA=="),
            [(Shape::Authorization, "dXNlcjpwYXNzd29yZA==")]
        );
        assert_eq!(shape_texts("Authorization: Bearer $API_TOKEN"), []);
    }

    #[test]
    fn secret_variables_become_markers_and_vanish_everywhere() {
        let token = "s3cr3t-t0ken-value";
        let r = Redaction::new(
            env(&[
                ("API_TOKEN", token),
                ("CURL_ARGS", &format!("-H 'X-Token: {token}'")),
                ("PATH", "/usr/bin:/bin"),
            ]),
            &Policy::default(),
        );
        assert_eq!(r.environment()["API_TOKEN"], "<redacted:API_TOKEN>");
        assert_eq!(
            r.environment()["CURL_ARGS"],
            "-H 'X-Token: <redacted:API_TOKEN>'"
        );
        assert_eq!(r.environment()["PATH"], "/usr/bin:/bin");
        assert_eq!(
            r.redacted().keys().collect::<Vec<_>>(),
            ["API_TOKEN", "CURL_ARGS"]
        );
        assert_eq!(r.redacted()["API_TOKEN"], "its name");
        assert_eq!(
            r.redacted()["CURL_ARGS"],
            "its value holds the value of API_TOKEN"
        );
        assert_eq!(
            r.scrub(&format!("Authorization: Bearer {token}")),
            "Authorization: Bearer <redacted:API_TOKEN>"
        );
        // From 16 bytes, inside words too.
        assert_eq!(
            r.scrub(&format!("-p{token}x {token}")),
            "-p<redacted:API_TOKEN>x <redacted:API_TOKEN>"
        );
        let weak = Redaction::new(env(&[("DB_PASSWORD", "postgres")]), &Policy::default());
        assert_eq!(
            weak.scrub("postgres /usr/bin/postgres postgresql -ppostgres"),
            "<redacted:DB_PASSWORD> /usr/bin/<redacted:DB_PASSWORD> postgresql -ppostgres"
        );
        let mut trace = serde_json::json!({
            "argv": ["/bin/true", token, format!("--t={token}")],
            "artifacts": {format!("out/{token}.txt"): {"read_by": [1]}},
            "n": 3,
        });
        assert_eq!(r.scrub_json(&mut trace), 3);
        assert_eq!(
            trace,
            serde_json::json!({
                "argv": ["/bin/true", "<redacted:API_TOKEN>", "--t=<redacted:API_TOKEN>"],
                "artifacts": {"out/<redacted:API_TOKEN>.txt": {"read_by": [1]}},
                "n": 3,
            })
        );
    }

    #[test]
    fn short_secrets_are_replaced_only_as_the_whole_value() {
        let r = Redaction::new(
            env(&[("DEBUG_TOKEN", "1"), ("MYSQL_PWD", "hunter2")]),
            &Policy::default(),
        );
        assert_eq!(r.environment()["DEBUG_TOKEN"], "<redacted:DEBUG_TOKEN>");
        assert_eq!(r.environment()["MYSQL_PWD"], "<redacted:MYSQL_PWD>");
        assert_eq!(r.scrub("cc -O1 -o x 1 hunter2"), "cc -O1 -o x 1 hunter2");
        // Empty values hide nothing.
        let r = Redaction::new(env(&[("API_TOKEN", "")]), &Policy::default());
        assert_eq!(r.environment()["API_TOKEN"], "");
        assert!(r.redacted().is_empty());
    }

    #[test]
    fn url_passwords_are_redacted_in_place() {
        let r = Redaction::new(
            env(&[
                ("DATABASE_URL", "postgres://u:pw@h/db"),
                ("REPLICA_URL", "postgres://app:Zq8vR2nLx0wQ@db:5432/app"),
                ("SITE", "https://user@example.com/"),
            ]),
            &Policy::default(),
        );
        assert_eq!(
            r.environment()["DATABASE_URL"],
            "postgres://u:<redacted:DATABASE_URL>@h/db"
        );
        assert_eq!(
            r.redacted()["DATABASE_URL"],
            "its value holds a URL password"
        );
        assert_eq!(
            r.redacted()["REPLICA_URL"],
            "its value holds a URL password"
        );
        assert_eq!(r.environment()["SITE"], "https://user@example.com/");
        // The short password only where a URL carries it; the long one anywhere.
        assert_eq!(
            r.scrub("psql postgres://u:pw@h/db; echo pw"),
            "psql postgres://u:<redacted:DATABASE_URL>@h/db; echo pw"
        );
        assert_eq!(
            r.scrub("PGPASSWORD=Zq8vR2nLx0wQ psql"),
            "PGPASSWORD=<redacted:REPLICA_URL> psql"
        );
        // A URL password not from the environment still goes.
        assert_eq!(
            r.scrub("git clone https://x:other-pass@git.example.com/r"),
            "git clone https://x:<redacted>@git.example.com/r"
        );
    }

    #[test]
    fn shapes_are_secret_whatever_the_name() {
        let gh = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
        let r = Redaction::new(
            env(&[("UPSTREAM", gh), ("NOTE", &format!("use {gh} here"))]),
            &Policy::default(),
        );
        // In its own value a secret is marked with its variable's name;
        // elsewhere with the variable it is the whole value of.
        assert_eq!(r.environment()["UPSTREAM"], "<redacted:UPSTREAM>");
        assert_eq!(r.environment()["NOTE"], "use <redacted:NOTE> here");
        assert_eq!(
            r.redacted()["UPSTREAM"],
            "its value holds a token with a well-known prefix"
        );
        assert_eq!(r.scrub(&format!("x{gh}")), "x<redacted:UPSTREAM>");
        // Not from the environment: found by its shape, as a whole token only.
        let other = "ghp_9876543210abcdefghijABCDEFGHIJ012345";
        assert_eq!(r.scrub(&format!("-{other}")), "-<redacted>");
        assert_eq!(r.scrub(&format!("x{other}")), format!("x{other}"));
    }

    #[test]
    fn multi_word_secrets_are_found_after_unquoted_expansion() {
        let r = Redaction::new(env(&[("DEPLOY_KEY_PEM", PEM)]), &Policy::default());
        assert_eq!(
            r.environment()["DEPLOY_KEY_PEM"],
            "<redacted:DEPLOY_KEY_PEM>"
        );
        // `echo $DEPLOY_KEY_PEM`: one argument, whitespace collapsed.
        let collapsed: String = PEM.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(r.scrub(&collapsed), "<redacted:DEPLOY_KEY_PEM>");
        // `printf %s\n $DEPLOY_KEY_PEM`: one argument per word.
        for word in PEM.split_whitespace() {
            let out = r.scrub(word);
            if word.len() >= MIN_FRAGMENT {
                assert_eq!(out, "<redacted:DEPLOY_KEY_PEM>");
            }
        }
        // `test -e "$DEPLOY_KEY_PEM"`: the value up to its first `/`, a
        // key without its END line.
        let lookup = &PEM[..PEM.find('/').unwrap()];
        assert_eq!(r.scrub(lookup), "<redacted>");
        // Pieces between slashes, from 16 bytes.
        let r = Redaction::new(
            env(&[(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYabc",
            )]),
            &Policy::default(),
        );
        assert_eq!(
            r.scrub("ls x/bPxRfiCYEXAMPLEKEYabc"),
            "ls x/<redacted:AWS_SECRET_ACCESS_KEY>"
        );
        assert_eq!(r.scrub("K7MDENG"), "K7MDENG");
        // A PEM key under a plain name is found by its shape.
        let r = Redaction::new(env(&[("DEPLOY", PEM)]), &Policy::default());
        assert_eq!(r.environment()["DEPLOY"], "<redacted:DEPLOY>\n");
        assert_eq!(r.redacted()["DEPLOY"], "its value holds a PEM private key");
    }

    #[test]
    fn jwt_under_a_plain_name() {
        let jwt = jwt();
        let r = Redaction::new(env(&[("CI_ID", &jwt)]), &Policy::default());
        assert_eq!(r.environment()["CI_ID"], "<redacted:CI_ID>");
        assert_eq!(r.scrub(&format!("Bearer {jwt}")), "Bearer <redacted:CI_ID>");
    }

    #[test]
    fn redact_env_and_keep_env() {
        let gh = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
        let policy = Policy::new(
            &["BUILD_NONCE".to_string()],
            &["API_TOKEN".to_string(), "FIXTURE".to_string()],
        )
        .unwrap();
        let r = Redaction::new(
            env(&[
                ("BUILD_NONCE", "n0nce-1234"),
                ("API_TOKEN", "not-secret-at-all"),
                ("FIXTURE", gh),
                ("PASSWORD", "hunter2-hunter2"),
                ("URLS", "ftp://me:hunter2-hunter2@h/"),
            ]),
            &policy,
        );
        assert_eq!(r.environment()["BUILD_NONCE"], "<redacted:BUILD_NONCE>");
        assert_eq!(r.redacted()["BUILD_NONCE"], "--redact-env");
        assert_eq!(r.environment()["API_TOKEN"], "not-secret-at-all");
        assert_eq!(r.environment()["FIXTURE"], gh);
        assert_eq!(
            r.scrub(&format!("t={gh} n0nce-1234")),
            format!("t={gh} <redacted:BUILD_NONCE>")
        );
        assert_eq!(r.environment()["URLS"], "ftp://me:<redacted:URLS>@h/");
        assert_eq!(
            r.redacted().keys().collect::<Vec<_>>(),
            ["BUILD_NONCE", "PASSWORD", "URLS"]
        );
        // A kept variable still loses another variable's secret.
        let policy = Policy::new(&[], &["NOTE".to_string()]).unwrap();
        let r = Redaction::new(
            env(&[
                ("NOTE", "pw is hunter2-hunter2"),
                ("PASSWORD", "hunter2-hunter2"),
            ]),
            &policy,
        );
        assert_eq!(r.environment()["NOTE"], "pw is <redacted:PASSWORD>");
    }

    #[test]
    fn contradicting_or_malformed_names_are_refused() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Policy::new(&names(&["A", "B"]), &names(&["B"])).unwrap_err(),
            PolicyError::Contradiction("B".into())
        );
        assert!(matches!(
            Policy::new(&names(&["A=1"]), &[]),
            Err(PolicyError::BadName {
                flag: "redact-env",
                ..
            })
        ));
        assert!(matches!(
            Policy::new(&[], &names(&[""])),
            Err(PolicyError::BadName {
                flag: "keep-env",
                ..
            })
        ));
    }

    #[test]
    fn overlapping_secrets_leave_nothing_behind() {
        let r = Redaction::new(
            env(&[
                ("A_TOKEN", "abcdefgh-ijklmnop"),
                ("B_TOKEN", "ijklmnop-qrstuvwx"),
            ]),
            &Policy::default(),
        );
        assert_eq!(r.scrub("abcdefgh-ijklmnop-qrstuvwx"), "<redacted:A_TOKEN>");
        // A value equal to a marker's text does not disturb markers.
        let r = Redaction::new(
            env(&[("X_TOKEN", "redacted:Y_TOKEN"), ("Y_TOKEN", "yyyyyyyyyy")]),
            &Policy::default(),
        );
        assert_eq!(
            r.scrub("redacted:Y_TOKEN yyyyyyyyyy"),
            "<redacted:X_TOKEN> <redacted:Y_TOKEN>"
        );
    }
}
