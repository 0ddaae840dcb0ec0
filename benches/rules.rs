//! Artifact rules as verification applies them: fnmatch patterns
//! (`tracelink::verify::fnmatch`) and one step's rule list over a queue of
//! 10,000 artifacts (`tracelink::verify::rules::apply_rules`).
//!
//! The step "build" reads 10,000 files a "checkout" step produced (8,000
//! `src/**/*.c`, 1,500 `include/**/*.h`, 500 `docs/**/*.md`) and produces
//! 9,500 new `build/**/*.o` and the 500 docs, changed. Its material rules
//! MATCH the sources and headers (the headers through IN prefixes) and ALLOW
//! the docs; its product rules CREATE the objects and MODIFY the docs; both
//! lists end in DISALLOW *, so every artifact passes through the whole list.
//!
//! Run: `cargo bench --bench rules`.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use std::collections::BTreeMap;
use tracelink::link::{ArtifactMap, DigestSet};
use tracelink::verify::fnmatch::Pattern;
use tracelink::verify::rules::{self, ArtifactsKind, Rule};

fn main() {
    divan::main();
}

const ARTIFACTS: usize = 10_000;

fn digest(tag: &str, i: usize) -> DigestSet {
    let hex = format!("{tag:0>8}{i:08x}").repeat(4);
    DigestSet::from([("sha256".to_string(), hex)])
}

/// `count` paths `top/module_NN/file_NNNNN.ext`, spread over 100 directories.
fn paths(top: &str, ext: &str, count: usize) -> impl Iterator<Item = String> {
    let top = top.to_string();
    let ext = ext.to_string();
    (0..count).map(move |i| format!("{top}/module_{:02}/file_{i:05}.{ext}", i % 100))
}

/// The checkout's products (= the build's materials) and the build's products.
fn artifacts() -> (ArtifactMap, ArtifactMap) {
    let mut materials = ArtifactMap::new();
    for (top, ext, count) in [
        ("src", "c", 8_000),
        ("include", "h", 1_500),
        ("docs", "md", 500),
    ] {
        for (i, path) in paths(top, ext, count).enumerate() {
            materials.insert(path, digest(top, i));
        }
    }
    let mut products = ArtifactMap::new();
    for (i, path) in paths("build", "o", 9_500).enumerate() {
        products.insert(path, digest("obj", i));
    }
    for (i, path) in paths("docs", "md", 500).enumerate() {
        products.insert(path, digest("newdoc", i));
    }
    assert_eq!((materials.len(), products.len()), (ARTIFACTS, ARTIFACTS));
    (materials, products)
}

fn parse(rules: &[&str]) -> Vec<Rule> {
    rules
        .iter()
        .map(|r| {
            let words: Vec<String> = r.split(' ').map(String::from).collect();
            rules::parse_rule(&words).expect("a valid rule")
        })
        .collect()
}

/// Everything `apply_rules` takes, built outside the timed section.
struct Step {
    materials: ArtifactMap,
    products: ArtifactMap,
    links: BTreeMap<String, (ArtifactMap, ArtifactMap)>,
}

impl Step {
    fn new() -> Step {
        let (materials, products) = artifacts();
        let links = BTreeMap::from([
            (
                "checkout".to_string(),
                (ArtifactMap::new(), materials.clone()),
            ),
            ("build".to_string(), (materials.clone(), products.clone())),
        ]);
        Step {
            materials,
            products,
            links,
        }
    }

    fn bench(&self, bencher: Bencher, kind: ArtifactsKind, rules: &[&str]) {
        let rules = parse(rules);
        let apply = |rules: &[Rule]| {
            rules::apply_rules(
                "build",
                rules,
                kind,
                &self.materials,
                &self.products,
                &self.links,
            )
        };
        // The rules must do their work: every artifact consumed, none disallowed.
        let outcome = apply(&rules);
        assert!(outcome.passed(), "{:?}", outcome.result);
        bencher
            .counter(ItemsCount::new(ARTIFACTS))
            .bench(|| apply(black_box(&rules)));
    }
}

mod apply_rules {
    use super::*;

    /// MATCH (plain and with IN prefixes), ALLOW, DISALLOW over the materials.
    #[divan::bench]
    fn materials_match_allow_disallow(bencher: Bencher) {
        Step::new().bench(
            bencher,
            ArtifactsKind::Materials,
            &[
                "MATCH src/* WITH PRODUCTS FROM checkout",
                "MATCH * IN include WITH PRODUCTS IN include FROM checkout",
                "ALLOW docs/*",
                "DISALLOW *",
            ],
        );
    }

    /// CREATE, MODIFY, DELETE (matching nothing), DISALLOW over the products.
    #[divan::bench]
    fn products_create_modify_disallow(bencher: Bencher) {
        Step::new().bench(
            bencher,
            ArtifactsKind::Products,
            &[
                "CREATE build/*.o",
                "MODIFY docs/*",
                "DELETE *.tmp",
                "DISALLOW *",
            ],
        );
    }
}

/// Patterns of the kinds layouts use: everything, a directory, an
/// extension, character classes, a literal path.
const PATTERNS: &[&str] = &[
    "*",
    "src/*",
    "*.o",
    "build/module_[0-4]?/*.o",
    "include/module_07/file_00007.h",
];

mod fnmatch {
    use super::*;

    /// `Pattern::matches` over the 10,000 material and 10,000 product
    /// paths; the pattern is compiled outside the timed section.
    #[divan::bench(args = PATTERNS)]
    fn matches(bencher: Bencher, pattern: &str) {
        let (materials, products) = artifacts();
        let names: Vec<String> = materials.into_keys().chain(products.into_keys()).collect();
        let pattern = Pattern::new(pattern);
        bencher.counter(ItemsCount::new(names.len())).bench(|| {
            black_box(&names)
                .iter()
                .filter(|name| black_box(&pattern).matches(name))
                .count()
        });
    }

    /// `Pattern::new`: compiling a pattern (done once per rule).
    #[divan::bench(args = PATTERNS)]
    fn compile(pattern: &str) -> Pattern {
        Pattern::new(black_box(pattern))
    }
}
