//! The recording semantics (`tracelink::record::semantics::Tracker`) over
//! the event stream of a synthetic incremental C build, as the monitor of
//! precise recording feeds it:
//!
//! - `rm` of 30 stale objects (announced, before-state kept, unlinked);
//! - 300 compile units, each one process: it reads its `.c` and 30 of 600
//!   shared headers, writes a dependency file through a temporary that it
//!   deletes, and writes its `.o` to a temporary name renamed into place
//!   (half the objects exist from an earlier build and are replaced);
//! - a link step that reads the 300 objects and renames the new binary
//!   over the old one.
//!
//! Pre-existing names are announced (`Event::Found`) at their first lookup,
//! and before-states are handed over where the monitor hands them: after
//! each read-open (hashed in the background) and before a name is replaced
//! or unlinked, each time behind `needs_before_state`. Lookups that find
//! nothing (probes) are not tracker events — the monitor reports them to the
//! trace directly — so they are not part of this stream. Digests are
//! precomputed 64-character strings: no file is read.
//!
//! Run: `cargo bench --bench semantics`.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use std::collections::HashMap;
use tracelink::record::semantics::{Entry, Event, FinalQuery, Node, Outcome, Tracker};

fn main() {
    divan::main();
}

const UNITS: usize = 300;
const HEADERS: usize = 600;
const HEADERS_PER_UNIT: usize = 30;
const STALE: usize = 30;

/// One thing the monitor does to the tracker.
enum Step {
    /// `Tracker::apply`.
    Apply(Event),
    /// A before-state ready for `node`: given if `needs_before_state`.
    Before(Node, String),
}

/// The stream and the final digests `finish` will ask for.
struct Build {
    steps: Vec<Step>,
    finals: HashMap<FinalQuery, String>,
    events: usize,
}

fn digest(node: Node, generation: u64) -> String {
    format!("{:016x}{:016x}", node.1, generation).repeat(2)
}

fn found(steps: &mut Vec<Step>, entry: Entry) {
    steps.push(Step::Apply(Event::Found(entry)));
}

/// A read-open, and its before-state hashed in the background.
fn read(steps: &mut Vec<Step>, path: &str, node: Node, pid: u32) {
    steps.push(Step::Apply(Event::Open {
        path: path.to_string(),
        node,
        read: true,
        write: false,
        truncate: false,
        pid,
    }));
    steps.push(Step::Before(node, digest(node, 0)));
}

fn rename(steps: &mut Vec<Step>, from: &str, to: &str, replaced: Option<Node>, pid: u32) {
    steps.push(Step::Apply(Event::Rename {
        from: from.to_string(),
        to: to.to_string(),
        replaced,
        moved: Vec::new(),
        pid,
    }));
}

fn build() -> Build {
    let mut steps = Vec::new();
    let mut next_ino = 0u64;
    let mut new_node = || {
        next_ino += 1;
        (1, next_ino)
    };
    for dir in ["src", "include", "build"] {
        found(&mut steps, Entry::dir(dir, new_node()));
    }

    // rm -f build/old*.o
    for k in 0..STALE {
        let path = format!("build/old{k:02}.o");
        let node = new_node();
        found(&mut steps, Entry::file(&path, node));
        steps.push(Step::Before(node, digest(node, 0)));
        steps.push(Step::Apply(Event::Unlink { path, pid: 100 }));
    }

    let mut headers: HashMap<usize, Node> = HashMap::new();
    let mut objects = Vec::with_capacity(UNITS);
    for i in 0..UNITS {
        let pid = 1000 + i as u32;
        let source = format!("src/u{i:03}.c");
        let node = new_node();
        found(&mut steps, Entry::file(&source, node));
        read(&mut steps, &source, node, pid);
        for k in 0..HEADERS_PER_UNIT {
            let j = (i * 7 + k * 13) % HEADERS;
            let path = format!("include/h{j:03}.h");
            let node = match headers.get(&j) {
                Some(&node) => node,
                None => {
                    let node = new_node();
                    headers.insert(j, node);
                    found(&mut steps, Entry::file(&path, node));
                    node
                }
            };
            read(&mut steps, &path, node, pid);
        }
        // -MD through a temporary that is deleted again.
        let dep = format!("build/.u{i:03}.d.tmp");
        steps.push(Step::Apply(Event::Create {
            path: dep.clone(),
            node: new_node(),
            pid,
        }));
        steps.push(Step::Apply(Event::Unlink { path: dep, pid }));
        // The object, through a temporary renamed into place.
        let tmp = format!("build/.u{i:03}.o.tmp");
        let object = format!("build/u{i:03}.o");
        let node = new_node();
        steps.push(Step::Apply(Event::Create {
            path: tmp.clone(),
            node,
            pid,
        }));
        let replaced = i.is_multiple_of(2).then(|| {
            let old = new_node();
            found(&mut steps, Entry::file(&object, old));
            steps.push(Step::Before(old, digest(old, 0)));
            old
        });
        rename(&mut steps, &tmp, &object, replaced, pid);
        objects.push((object, node));
    }

    // The link step.
    let pid = 5000;
    for (object, node) in &objects {
        read(&mut steps, object, *node, pid);
    }
    let old = new_node();
    found(&mut steps, Entry::file("build/app", old));
    steps.push(Step::Apply(Event::Create {
        path: "build/app.tmp".into(),
        node: new_node(),
        pid,
    }));
    steps.push(Step::Before(old, digest(old, 0)));
    rename(&mut steps, "build/app.tmp", "build/app", Some(old), pid);

    let mut build = Build {
        events: steps.iter().filter(|s| matches!(s, Step::Apply(_))).count(),
        steps,
        finals: HashMap::new(),
    };
    // What the monitor hashes at the end, once, outside the timed section.
    build.finals = apply(&build)
        .final_queries()
        .into_iter()
        .map(|query| {
            let node = query.1.expect("no symlinks in this build");
            (query, digest(node, 1))
        })
        .collect();
    let outcome = finish(apply(&build), &build.finals);
    assert!(
        outcome.notes.iter().all(|n| !n.is_error()),
        "{:?}",
        outcome.notes
    );
    let materials = UNITS + headers.len() + UNITS / 2 + STALE + 1;
    assert_eq!(outcome.materials.len(), materials);
    assert_eq!(outcome.products.len(), UNITS + 1);
    build
}

fn apply(build: &Build) -> Tracker<String> {
    let mut tracker = Tracker::new();
    for step in &build.steps {
        match step {
            Step::Apply(event) => tracker.apply(event),
            Step::Before(node, digest) => {
                if tracker.needs_before_state(*node) {
                    tracker.set_before(*node, digest.clone());
                }
            }
        }
    }
    tracker
}

fn finish(tracker: Tracker<String>, finals: &HashMap<FinalQuery, String>) -> Outcome<String> {
    // As precise recording does it: ask for the queries, hash them (here:
    // look them up), then finish.
    let _queries = black_box(tracker.final_queries());
    tracker.finish(|path, node| finals.get(&(path.to_string(), node)).cloned())
}

/// Applying the event stream (and the before-states) to a new tracker.
#[divan::bench(sample_count = 50)]
fn apply_events(bencher: Bencher) {
    let build = build();
    bencher
        .counter(ItemsCount::new(build.events))
        .bench(|| apply(black_box(&build)));
}

/// A whole run: the stream, then `final_queries` and `finish`.
#[divan::bench(sample_count = 50)]
fn apply_and_finish(bencher: Bencher) {
    let build = build();
    bencher
        .counter(ItemsCount::new(build.events))
        .bench(|| finish(apply(black_box(&build)), &build.finals));
}
