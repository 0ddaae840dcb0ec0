//! Canonical JSON (`tracelink::link::canonical::encode`) of a link with
//! 10,000 materials and 10,000 products (sha256 each): the bytes a classic
//! link signature covers, made once per recorded step.
//!
//! Run: `cargo bench --bench canonical`.

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use serde_json::Value;
use tracelink::link::{ArtifactMap, Byproducts, DigestSet, Link, canonical};

fn main() {
    divan::main();
}

const ARTIFACTS: usize = 10_000;

/// `count` artifacts under `top`, spread over 100 directories, with a
/// distinct made-up sha256 each (`salt` makes products differ from materials).
fn artifacts(top: &str, ext: &str, count: usize, salt: u64) -> ArtifactMap {
    (0..count)
        .map(|i| {
            let path = format!("{top}/module_{:02}/file_{i:05}.{ext}", i % 100);
            let digest = format!("{:016x}", (i as u64) ^ salt).repeat(4);
            (path, DigestSet::from([("sha256".to_string(), digest)]))
        })
        .collect()
}

fn link() -> Link {
    Link {
        name: "build".into(),
        command: vec!["make".into(), "-j2".into(), "all".into()],
        materials: artifacts("src", "c", ARTIFACTS, 0x5eed),
        products: artifacts("build", "o", ARTIFACTS, 0xfeed),
        byproducts: Byproducts {
            return_value: Some(0),
            stdout: Some(String::new()),
            stderr: Some(String::new()),
        },
        environment: serde_json::Map::new(),
    }
}

/// `encode` alone, from the JSON value a link becomes.
#[divan::bench]
fn encode(bencher: Bencher) {
    let value: Value = link().into_value();
    let size = canonical::encode(&value).expect("no floats").len();
    bencher
        .counter(BytesCount::new(size))
        .counter(ItemsCount::new(2 * ARTIFACTS))
        .bench(|| canonical::encode(black_box(&value)));
}

/// What signing does before the signature: the link becomes a JSON value
/// (consuming it) and that value is encoded. Each iteration gets its own
/// copy of the link, made outside the timed section; the value and bytes
/// are returned so that dropping them is not timed either.
#[divan::bench]
fn link_to_canonical(bencher: Bencher) {
    let link = link();
    let size = canonical::encode(&link.to_value())
        .expect("no floats")
        .len();
    bencher
        .counter(BytesCount::new(size))
        .counter(ItemsCount::new(2 * ARTIFACTS))
        .with_inputs(|| link.clone())
        .bench_local_values(|link| {
            let value = black_box(link).into_value();
            let bytes = canonical::encode(&value);
            (value, bytes)
        });
}
