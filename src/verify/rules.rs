//! in-toto artifact rules: parsing (`in_toto.rulelib.unpack_rule`) and
//! applying the rules of one step or inspection to its materials or products
//! (`in_toto.verifylib.verify_item_rules` and the `verify_*_rule` functions),
//! with in-toto 3.1.0's semantics:
//!
//! - The queue starts as every path of the item's materials (or products).
//!   Rules run in order; consuming rules remove paths from the queue.
//! - `MATCH pattern [IN src] WITH MATERIALS|PRODUCTS [IN dst] FROM step`:
//!   with a source prefix, only queued paths starting with the prefix plus
//!   `/` (added unless it already ends in `/`) are considered, and the
//!   pattern is matched against the rest. Each such rest is joined (like
//!   Python's `os.path.join`, then `\` → `/`) to the source prefix and to
//!   the destination prefix; the source path is consumed if the destination
//!   step's artifact of that path exists with exactly the same digest set.
//!   A step with no link consumes nothing. (If the re-joined source path is
//!   not an artifact of the item, in-toto crashes with a `KeyError`; that is
//!   reported here as [`FailureKind::MatchSourceMissing`].)
//! - `CREATE`/`DELETE`: queued matching paths that are only products / only
//!   materials of the item; `MODIFY`: in both, with different digest sets;
//!   `ALLOW`: all queued matching paths.
//! - `DISALLOW pattern` fails if any queued path matches; `REQUIRE path`
//!   fails unless the literal path is queued. Neither consumes anything.
//!
//! Patterns are matched with [`crate::verify::fnmatch`] (Python's
//! `fnmatch.fnmatchcase`: `*` crosses `/`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::verify::fnmatch::Pattern;

/// A link's artifact maps (path → {algorithm: hex}), as the link model has them.
pub use crate::link::{ArtifactMap, DigestSet};

/// Which half of a link: its materials or its products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactsKind {
    Materials,
    Products,
}

/// The destination of a `MATCH` rule (`WITH MATERIALS` or `WITH PRODUCTS`).
pub type DestType = ArtifactsKind;

impl ArtifactsKind {
    /// `"materials"` or `"products"`, as in-toto spells `source_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactsKind::Materials => "materials",
            ArtifactsKind::Products => "products",
        }
    }
}

impl fmt::Display for ArtifactsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One artifact rule, as `unpack_rule` understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `MATCH pattern [IN source_prefix] WITH dest_type [IN dest_prefix] FROM dest_name`.
    /// A prefix given as the empty string (`IN ""`) is kept as `Some("")`;
    /// like in-toto, an empty prefix is treated as no prefix.
    Match {
        pattern: String,
        source_prefix: Option<String>,
        dest_type: DestType,
        dest_prefix: Option<String>,
        dest_name: String,
    },
    Create(String),
    Delete(String),
    Modify(String),
    Allow(String),
    Disallow(String),
    /// A literal path, not a pattern.
    Require(String),
}

impl Rule {
    /// The rule's pattern (for `REQUIRE`, its literal path).
    pub fn pattern(&self) -> &str {
        match self {
            Rule::Match { pattern, .. }
            | Rule::Create(pattern)
            | Rule::Delete(pattern)
            | Rule::Modify(pattern)
            | Rule::Allow(pattern)
            | Rule::Disallow(pattern)
            | Rule::Require(pattern) => pattern,
        }
    }

    /// The rule in its list form with upper-case keywords (`pack_rule`).
    pub fn to_list(&self) -> Vec<String> {
        let generic = |kw: &str, p: &str| vec![kw.to_owned(), p.to_owned()];
        match self {
            Rule::Match {
                pattern,
                source_prefix,
                dest_type,
                dest_prefix,
                dest_name,
            } => {
                let mut list = vec!["MATCH".to_owned(), pattern.clone()];
                if let Some(src) = source_prefix.as_deref().filter(|s| !s.is_empty()) {
                    list.extend(["IN".to_owned(), src.to_owned()]);
                }
                list.extend(["WITH".to_owned(), dest_type.as_str().to_uppercase()]);
                if let Some(dst) = dest_prefix.as_deref().filter(|s| !s.is_empty()) {
                    list.extend(["IN".to_owned(), dst.to_owned()]);
                }
                list.extend(["FROM".to_owned(), dest_name.clone()]);
                list
            }
            Rule::Create(p) => generic("CREATE", p),
            Rule::Delete(p) => generic("DELETE", p),
            Rule::Modify(p) => generic("MODIFY", p),
            Rule::Allow(p) => generic("ALLOW", p),
            Rule::Disallow(p) => generic("DISALLOW", p),
            Rule::Require(p) => generic("REQUIRE", p),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_list().join(" "))
    }
}

/// A rule that `unpack_rule` would reject (it raises `FormatError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "wrong rule format {rule:?}: rules must start with one of MATCH, CREATE, DELETE, \
         MODIFY, ALLOW, DISALLOW, REQUIRE (case-insensitive) and give a pattern as second element"
    )]
    UnknownType { rule: Vec<String> },
    #[error(
        "wrong rule format {rule:?}: CREATE, DELETE, MODIFY, ALLOW, DISALLOW and REQUIRE \
         rules take exactly one pattern"
    )]
    GenericArity { rule: Vec<String> },
    #[error(
        "wrong rule format {rule:?}: match rules must have the format MATCH <pattern> \
         [IN <source-path-prefix>] WITH (MATERIALS|PRODUCTS) [IN <destination-path-prefix>] \
         FROM <step>"
    )]
    MatchFormat { rule: Vec<String> },
    #[error(
        "wrong rule format {rule:?}: match rules must have either MATERIALS or PRODUCTS \
         (case-insensitive) as destination"
    )]
    MatchDestType { rule: Vec<String> },
}

impl RuleError {
    /// The offending rule.
    pub fn rule(&self) -> &[String] {
        match self {
            RuleError::UnknownType { rule }
            | RuleError::GenericArity { rule }
            | RuleError::MatchFormat { rule }
            | RuleError::MatchDestType { rule } => rule,
        }
    }
}

/// Parses a rule in exactly the forms `in_toto.rulelib.unpack_rule` accepts:
/// keywords are case-insensitive, patterns, prefixes and step names keep
/// their case.
pub fn parse_rule(rule: &[String]) -> Result<Rule, RuleError> {
    let lower: Vec<String> = rule.iter().map(|e| e.to_lowercase()).collect();
    let err = |make: fn(Vec<String>) -> RuleError| Err(make(rule.to_vec()));
    const KEYWORDS: [&str; 7] = [
        "create", "modify", "delete", "allow", "disallow", "require", "match",
    ];
    if rule.len() < 2 || !KEYWORDS.contains(&lower[0].as_str()) {
        return err(|rule| RuleError::UnknownType { rule });
    }
    let pattern = rule[1].clone();
    let generic = match lower[0].as_str() {
        "create" => Some(Rule::Create as fn(String) -> Rule),
        "delete" => Some(Rule::Delete as fn(String) -> Rule),
        "modify" => Some(Rule::Modify as fn(String) -> Rule),
        "allow" => Some(Rule::Allow as fn(String) -> Rule),
        "disallow" => Some(Rule::Disallow as fn(String) -> Rule),
        "require" => Some(Rule::Require as fn(String) -> Rule),
        _ => None,
    };
    if let Some(make) = generic {
        if rule.len() != 2 {
            return err(|rule| RuleError::GenericArity { rule });
        }
        return Ok(make(pattern));
    }
    let kw = |i: usize, word: &str| lower[i] == word;
    // (source_prefix, dest_type index, dest_prefix, dest_name)
    let (source_prefix, dest_type, dest_prefix, dest_name) = match rule.len() {
        10 if kw(2, "in") && kw(4, "with") && kw(6, "in") && kw(8, "from") => (
            Some(rule[3].clone()),
            &lower[5],
            Some(rule[7].clone()),
            &rule[9],
        ),
        8 if kw(2, "in") && kw(4, "with") && kw(6, "from") => {
            (Some(rule[3].clone()), &lower[5], None, &rule[7])
        }
        8 if kw(2, "with") && kw(4, "in") && kw(6, "from") => {
            (None, &lower[3], Some(rule[5].clone()), &rule[7])
        }
        6 if kw(2, "with") && kw(4, "from") => (None, &lower[3], None, &rule[5]),
        _ => return err(|rule| RuleError::MatchFormat { rule }),
    };
    let dest_type = match dest_type.as_str() {
        "materials" => ArtifactsKind::Materials,
        "products" => ArtifactsKind::Products,
        _ => return err(|rule| RuleError::MatchDestType { rule }),
    };
    Ok(Rule::Match {
        pattern,
        source_prefix,
        dest_type,
        dest_prefix,
        dest_name: dest_name.clone(),
    })
}

/// What one applied rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStep {
    pub rule: Rule,
    /// Paths this rule removed from the queue (sorted). The queue after a
    /// rule is the initial queue less what this and earlier rules consumed.
    pub consumed: Vec<String>,
}

/// Why a rule failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// `DISALLOW` matched these queued paths (sorted).
    Disallowed { paths: Vec<String> },
    /// `REQUIRE` did not find its path in the queue.
    RequiredMissing { path: String },
    /// A `MATCH` with a source prefix re-joined a queued path into `path`,
    /// which is not an artifact of the item (in-toto 3.1.0 raises `KeyError`
    /// there, which fails verification).
    MatchSourceMissing { path: String },
}

/// The first failing rule of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    /// Index of the failing rule in the item's rule list.
    pub rule_index: usize,
    pub rule: Rule,
    pub kind: FailureKind,
    /// One line, like in-toto's `RuleVerificationError` message.
    pub reason: String,
}

impl fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The result of applying an item's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub item_name: String,
    pub artifacts_kind: ArtifactsKind,
    /// The initial queue (sorted).
    pub queue_before: Vec<String>,
    /// One entry per rule that completed (a failing rule has none).
    pub trace: Vec<RuleStep>,
    /// `Ok(())`, or the first failure.
    pub result: Result<(), RuleFailure>,
}

impl RuleOutcome {
    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }
}

/// Python's `os.path.join(a, b)` on POSIX, for a single `b`, followed by
/// in-toto's `.replace("\\", "/")`.
fn join_prefix(prefix: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else if prefix.is_empty() || prefix.ends_with('/') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}/{path}")
    };
    joined.replace('\\', "/")
}

fn non_empty(prefix: &Option<String>) -> Option<&str> {
    prefix.as_deref().filter(|p| !p.is_empty())
}

/// `fnmatch.filter(queue, pattern)`.
fn filter<'a>(queue: &'a BTreeSet<String>, pattern: &str) -> Vec<&'a String> {
    let pattern = Pattern::new(pattern);
    queue.iter().filter(|p| pattern.matches(p)).collect()
}

fn python_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| python_repr(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Python's `repr` of a str, as in-toto's messages print paths: single
/// quotes unless the text holds a single quote and no double quote.
fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            // Python escapes what str.isprintable() rejects: C0, DEL, C1
            // such as U+009B, bidi overrides such as U+202E, ...
            c if !crate::text::is_printable(c) => {
                out.push_str(&crate::text::printable(c.encode_utf8(&mut [0; 4])));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Applies the rules of item `item_name` (a step or inspection) to its
/// materials or products (`artifacts_kind`), in order, like in-toto 3.1.0's
/// `verify_item_rules`. `materials` and `products` are the item's own
/// artifacts; `links` maps step and inspection names to (materials,
/// products) for `MATCH ... FROM`, and should hold the item itself too
/// (in-toto's does). Returns the first failure, if any, and a trace.
pub fn apply_rules(
    item_name: &str,
    rules: &[Rule],
    artifacts_kind: ArtifactsKind,
    materials: &ArtifactMap,
    products: &ArtifactMap,
    links: &BTreeMap<String, (ArtifactMap, ArtifactMap)>,
) -> RuleOutcome {
    let artifacts = match artifacts_kind {
        ArtifactsKind::Materials => materials,
        ArtifactsKind::Products => products,
    };
    let mut queue: BTreeSet<String> = artifacts.keys().cloned().collect();
    let mut outcome = RuleOutcome {
        item_name: item_name.to_owned(),
        artifacts_kind,
        queue_before: queue.iter().cloned().collect(),
        trace: Vec::new(),
        result: Ok(()),
    };
    for (rule_index, rule) in rules.iter().enumerate() {
        let fail = |kind: FailureKind, reason: String| RuleFailure {
            rule_index,
            rule: rule.clone(),
            kind,
            reason,
        };
        let consumed: BTreeSet<String> = match rule {
            Rule::Match {
                pattern,
                source_prefix,
                dest_type,
                dest_prefix,
                dest_name,
            } => match match_rule(
                pattern,
                non_empty(source_prefix),
                *dest_type,
                non_empty(dest_prefix),
                links.get(dest_name),
                &queue,
                artifacts,
            ) {
                Ok(consumed) => consumed,
                Err(path) => {
                    outcome.result = Err(fail(
                        FailureKind::MatchSourceMissing { path: path.clone() },
                        format!(
                            "'{rule}' maps a queued artifact to {path}, which is not among \
                             the {artifacts_kind} of {item_name:?} (in-toto 3.1.0 fails with \
                             KeyError: {path})",
                            path = python_repr(&path)
                        ),
                    ));
                    return outcome;
                }
            },
            Rule::Create(pattern) => filter(&queue, pattern)
                .into_iter()
                .filter(|p| products.contains_key(*p) && !materials.contains_key(*p))
                .cloned()
                .collect(),
            Rule::Delete(pattern) => filter(&queue, pattern)
                .into_iter()
                .filter(|p| materials.contains_key(*p) && !products.contains_key(*p))
                .cloned()
                .collect(),
            Rule::Modify(pattern) => filter(&queue, pattern)
                .into_iter()
                .filter(|p| match (materials.get(*p), products.get(*p)) {
                    (Some(m), Some(p)) => m != p,
                    _ => false,
                })
                .cloned()
                .collect(),
            Rule::Allow(pattern) => filter(&queue, pattern).into_iter().cloned().collect(),
            Rule::Disallow(pattern) => {
                let matched = filter(&queue, pattern);
                if !matched.is_empty() {
                    let list = python_list(matched.iter().copied());
                    let paths = matched.into_iter().cloned().collect();
                    outcome.result = Err(fail(
                        FailureKind::Disallowed { paths },
                        format!("'DISALLOW {pattern}' matched the following artifacts: {list}"),
                    ));
                    return outcome;
                }
                BTreeSet::new()
            }
            Rule::Require(path) => {
                if !queue.contains(path) {
                    let list = python_list(&queue);
                    outcome.result = Err(fail(
                        FailureKind::RequiredMissing { path: path.clone() },
                        format!("'REQUIRE {path}' did not find {path} in: {list}"),
                    ));
                    return outcome;
                }
                BTreeSet::new()
            }
        };
        let removed: Vec<String> = consumed.intersection(&queue).cloned().collect();
        for path in &removed {
            queue.remove(path);
        }
        outcome.trace.push(RuleStep {
            rule: rule.clone(),
            consumed: removed,
        });
    }
    outcome
}

/// `verify_match_rule`: the set of consumed source paths, or the source path
/// in-toto would fail to look up (`KeyError`).
fn match_rule(
    pattern: &str,
    source_prefix: Option<&str>,
    dest_type: DestType,
    dest_prefix: Option<&str>,
    dest_link: Option<&(ArtifactMap, ArtifactMap)>,
    queue: &BTreeSet<String>,
    source_artifacts: &ArtifactMap,
) -> Result<BTreeSet<String>, String> {
    let mut consumed = BTreeSet::new();
    let Some((dest_materials, dest_products)) = dest_link else {
        return Ok(consumed);
    };
    let dest_artifacts = match dest_type {
        ArtifactsKind::Materials => dest_materials,
        ArtifactsKind::Products => dest_products,
    };
    // Filter by source prefix (with a trailing slash), strip it, then glob.
    let candidates: Vec<&str> = match source_prefix {
        Some(prefix) => {
            let normalized = join_prefix(prefix, "");
            queue
                .iter()
                .filter_map(|p| p.strip_prefix(normalized.as_str()))
                .collect()
        }
        None => queue.iter().map(String::as_str).collect(),
    };
    let pattern = Pattern::new(pattern);
    for path in candidates.into_iter().filter(|p| pattern.matches(p)) {
        let full_source = match source_prefix {
            Some(prefix) => join_prefix(prefix, path),
            None => path.to_owned(),
        };
        let full_dest = match dest_prefix {
            Some(prefix) => join_prefix(prefix, path),
            None => path.to_owned(),
        };
        let Some(source_digests) = source_artifacts.get(&full_source) else {
            return Err(full_source);
        };
        if dest_artifacts.get(&full_dest) == Some(source_digests) {
            consumed.insert(full_source);
        }
    }
    Ok(consumed)
}

#[cfg(test)]
mod python_repr_tests {
    use super::python_repr;

    #[test]
    fn paths_print_as_python_prints_them() {
        assert_eq!(python_repr("a/b.c"), "'a/b.c'");
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(python_repr("tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(python_repr("bell\u{7}"), "'bell\\x07'");
        assert_eq!(python_repr("é"), "'é'");
        // As Python 3's repr: '\x9b', '\u202e', '\xa0', '\U000e0041'.
        assert_eq!(
            python_repr("id_rsa\u{1b}[2K\r csi\u{9b}2J evil\u{202e}txt\u{a0}\u{e0041}"),
            r"'id_rsa\x1b[2K\r csi\x9b2J evil\u202etxt\xa0\U000e0041'"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn rule(text: &str) -> Rule {
        parse_rule(&s(&text.split(' ').collect::<Vec<_>>())).expect("valid rule")
    }

    fn arts(entries: &[(&str, &str)]) -> ArtifactMap {
        entries
            .iter()
            .map(|(p, d)| {
                (
                    p.to_string(),
                    BTreeMap::from([("sha256".to_string(), d.to_string())]),
                )
            })
            .collect()
    }

    struct World {
        links: BTreeMap<String, (ArtifactMap, ArtifactMap)>,
    }

    impl World {
        fn new(items: &[(&str, ArtifactMap, ArtifactMap)]) -> World {
            World {
                links: items
                    .iter()
                    .map(|(n, m, p)| (n.to_string(), (m.clone(), p.clone())))
                    .collect(),
            }
        }

        fn apply(&self, item: &str, kind: ArtifactsKind, rules: &[&str]) -> RuleOutcome {
            let rules: Vec<Rule> = rules.iter().map(|r| rule(r)).collect();
            let (m, p) = &self.links[item];
            apply_rules(item, &rules, kind, m, p, &self.links)
        }
    }

    #[test]
    fn parse_forms() {
        assert_eq!(rule("create foo"), Rule::Create("foo".into()));
        assert_eq!(rule("ReQuIrE Foo"), Rule::Require("Foo".into()));
        assert_eq!(
            rule("match *.c in Src with Products in dst from Build"),
            Rule::Match {
                pattern: "*.c".into(),
                source_prefix: Some("Src".into()),
                dest_type: ArtifactsKind::Products,
                dest_prefix: Some("dst".into()),
                dest_name: "Build".into(),
            }
        );
        assert_eq!(
            rule("MATCH * WITH MATERIALS FROM a"),
            Rule::Match {
                pattern: "*".into(),
                source_prefix: None,
                dest_type: ArtifactsKind::Materials,
                dest_prefix: None,
                dest_name: "a".into(),
            }
        );
        assert_eq!(
            rule("MATCH * WITH materials IN d FROM a").to_string(),
            "MATCH * WITH MATERIALS IN d FROM a"
        );
        assert!(matches!(
            parse_rule(&s(&["CREATE"])),
            Err(RuleError::UnknownType { .. })
        ));
        assert!(matches!(
            parse_rule(&s(&["COPY", "x"])),
            Err(RuleError::UnknownType { .. })
        ));
        assert!(matches!(
            parse_rule(&s(&["ALLOW", "x", "y"])),
            Err(RuleError::GenericArity { .. })
        ));
        assert!(matches!(
            parse_rule(&s(&["MATCH", "x", "WITH", "PRODUCTS", "FROM"])),
            Err(RuleError::MatchFormat { .. })
        ));
        let e = parse_rule(&s(&["MATCH", "x", "WITH", "BYPRODUCTS", "FROM", "a"])).unwrap_err();
        assert!(matches!(e, RuleError::MatchDestType { .. }));
        assert!(e.to_string().contains("BYPRODUCTS"), "{e}");
        assert_eq!(e.rule()[3], "BYPRODUCTS");
    }

    #[test]
    fn allow_and_disallow() {
        let w = World::new(&[(
            "s",
            ArtifactMap::new(),
            arts(&[("a.c", "1"), ("b/x.o", "2")]),
        )]);
        let o = w.apply("s", ArtifactsKind::Products, &["ALLOW *.c", "DISALLOW *"]);
        let f = o.result.unwrap_err();
        assert_eq!(f.rule_index, 1);
        assert_eq!(
            f.kind,
            FailureKind::Disallowed {
                paths: s(&["b/x.o"])
            }
        );
        assert_eq!(
            f.reason,
            "'DISALLOW *' matched the following artifacts: ['b/x.o']"
        );
        assert_eq!(o.trace.len(), 1);
        assert_eq!(o.trace[0].consumed, s(&["a.c"]));
        let o = w.apply(
            "s",
            ArtifactsKind::Products,
            &["ALLOW b/*", "ALLOW *.c", "DISALLOW *"],
        );
        assert!(o.passed(), "{o:?}");
        // Materials are empty: nothing to disallow.
        assert!(
            w.apply("s", ArtifactsKind::Materials, &["DISALLOW *"])
                .passed()
        );
    }

    #[test]
    fn create_delete_modify() {
        let m = arts(&[("kept", "1"), ("changed", "1"), ("gone", "1")]);
        let p = arts(&[("kept", "1"), ("changed", "2"), ("new", "3")]);
        let w = World::new(&[("s", m, p)]);
        let consumed = |kind, r: &str| w.apply("s", kind, &[r]).trace[0].consumed.clone();
        use ArtifactsKind::*;
        assert_eq!(consumed(Products, "CREATE *"), s(&["new"]));
        assert_eq!(consumed(Materials, "CREATE *"), Vec::<String>::new());
        assert_eq!(consumed(Materials, "DELETE *"), s(&["gone"]));
        assert_eq!(consumed(Products, "DELETE *"), Vec::<String>::new());
        assert_eq!(consumed(Products, "MODIFY *"), s(&["changed"]));
        assert_eq!(consumed(Materials, "MODIFY *"), s(&["changed"]));
        assert_eq!(consumed(Products, "MODIFY k*"), Vec::<String>::new());
        let o = w.apply(
            "s",
            Products,
            &["CREATE new", "MODIFY changed", "ALLOW kept", "DISALLOW *"],
        );
        assert!(o.passed(), "{o:?}");
    }

    #[test]
    fn require() {
        let w = World::new(&[("s", arts(&[("a", "1"), ("b", "1")]), ArtifactMap::new())]);
        assert!(
            w.apply("s", ArtifactsKind::Materials, &["REQUIRE a"])
                .passed()
        );
        // Literal, not a pattern.
        let o = w.apply("s", ArtifactsKind::Materials, &["REQUIRE *"]);
        assert_eq!(
            o.result.unwrap_err().kind,
            FailureKind::RequiredMissing { path: "*".into() }
        );
        // Consumed paths are no longer there to be required.
        let o = w.apply("s", ArtifactsKind::Materials, &["ALLOW a", "REQUIRE a"]);
        let f = o.result.unwrap_err();
        assert_eq!(f.rule_index, 1);
        assert_eq!(f.reason, "'REQUIRE a' did not find a in: ['b']");
    }

    #[test]
    fn match_plain_and_digests() {
        let w = World::new(&[
            (
                "fetch",
                ArtifactMap::new(),
                arts(&[("src/a.c", "1"), ("src/b.c", "2")]),
            ),
            (
                "build",
                arts(&[("src/a.c", "1"), ("src/b.c", "X")]),
                ArtifactMap::new(),
            ),
        ]);
        let o = w.apply(
            "build",
            ArtifactsKind::Materials,
            &["MATCH * WITH PRODUCTS FROM fetch"],
        );
        assert_eq!(o.trace[0].consumed, s(&["src/a.c"]));
        // Unknown step: consumes nothing, is no error.
        let o = w.apply(
            "build",
            ArtifactsKind::Materials,
            &["MATCH * WITH PRODUCTS FROM nope"],
        );
        assert!(o.trace[0].consumed.is_empty() && o.passed());
        // Digest sets are compared whole.
        let mut two = arts(&[("f", "1")]);
        two.get_mut("f")
            .unwrap()
            .insert("sha512".into(), "9".into());
        let w = World::new(&[
            ("a", ArtifactMap::new(), two),
            ("b", arts(&[("f", "1")]), ArtifactMap::new()),
        ]);
        let o = w.apply(
            "b",
            ArtifactsKind::Materials,
            &["MATCH f WITH PRODUCTS FROM a"],
        );
        assert!(o.trace[0].consumed.is_empty());
    }

    #[test]
    fn match_prefixes() {
        let w = World::new(&[
            (
                "fetch",
                ArtifactMap::new(),
                arts(&[("up/x.c", "1"), ("up/sub/y.c", "2"), ("z.c", "3")]),
            ),
            (
                "build",
                arts(&[
                    ("src/x.c", "1"),
                    ("src/sub/y.c", "2"),
                    ("srcx.c", "1"),
                    ("z.c", "3"),
                ]),
                ArtifactMap::new(),
            ),
        ]);
        let consumed = |r: &str| {
            w.apply("build", ArtifactsKind::Materials, &[r]).trace[0]
                .consumed
                .clone()
        };
        assert_eq!(
            consumed("MATCH * IN src WITH PRODUCTS IN up FROM fetch"),
            s(&["src/sub/y.c", "src/x.c"])
        );
        // Trailing slashes change nothing; the prefix is not globbed.
        assert_eq!(
            consumed("MATCH *.c IN src/ WITH PRODUCTS IN up/ FROM fetch"),
            s(&["src/sub/y.c", "src/x.c"])
        );
        assert_eq!(
            consumed("MATCH * IN s* WITH PRODUCTS IN up FROM fetch"),
            Vec::<String>::new()
        );
        // The pattern applies below the prefix.
        assert_eq!(
            consumed("MATCH x.c IN src WITH PRODUCTS IN up FROM fetch"),
            s(&["src/x.c"])
        );
        assert_eq!(consumed("MATCH z.c WITH PRODUCTS FROM fetch"), s(&["z.c"]));
        // Empty prefixes are no prefixes.
        assert_eq!(
            consumed("MATCH z.c IN  WITH PRODUCTS FROM fetch"),
            s(&["z.c"])
        );
        let r = parse_rule(&s(&[
            "MATCH", "z.c", "IN", "", "WITH", "PRODUCTS", "IN", "", "FROM", "fetch",
        ]))
        .unwrap();
        let (m, p) = &w.links["build"];
        let o = apply_rules("build", &[r], ArtifactsKind::Materials, m, p, &w.links);
        assert_eq!(o.trace[0].consumed, s(&["z.c"]));
    }

    #[test]
    fn match_source_path_lookup_failure() {
        // `src//x` under prefix `src` leaves `/x`, which os.path.join turns
        // into the absolute `/x`: not an artifact, in-toto hits KeyError.
        let w = World::new(&[
            ("a", ArtifactMap::new(), arts(&[("/x", "1")])),
            ("b", arts(&[("src//x", "1")]), ArtifactMap::new()),
        ]);
        let o = w.apply(
            "b",
            ArtifactsKind::Materials,
            &["MATCH * IN src WITH PRODUCTS FROM a"],
        );
        let f = o.result.unwrap_err();
        assert_eq!(
            f.kind,
            FailureKind::MatchSourceMissing { path: "/x".into() }
        );
        assert_eq!(join_prefix("a\\b", "c"), "a/b/c");
        assert_eq!(join_prefix("a", ""), "a/");
        assert_eq!(join_prefix("a/", ""), "a/");
        assert_eq!(join_prefix("a", "/c"), "/c");
    }
}
