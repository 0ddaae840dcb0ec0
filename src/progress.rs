//! The progress line for long hashing passes: shown on stderr only when it is
//! a terminal and the pass has taken more than half a second, so short runs
//! and logs stay quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};
use tracelink::hash::Progress;

pub struct HashProgress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
    enabled: bool,
}

impl HashProgress {
    pub fn new(what: &'static str) -> HashProgress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {wide_bar} {binary_bytes}/{binary_total_bytes} {msg} files {eta}",
            )
            .expect("the template is valid"),
        );
        bar.set_prefix(what);
        HashProgress {
            bar,
            started: Instant::now(),
            shown: false,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&mut self, p: &Progress) {
        if !self.enabled {
            return;
        }
        if !self.shown && self.started.elapsed() > Duration::from_millis(500) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.set_length(p.bytes_total);
        self.bar.set_position(p.bytes_done);
        self.bar
            .set_message(format!("{}/{}", p.files_done, p.files_total));
    }
}

impl Drop for HashProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
