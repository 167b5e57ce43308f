//! Progress bars for transfers (indicatif), shown only to a person: on a terminal's stderr and
//! never with `--json`, so scripts and pipes see nothing extra.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use tideline_sync::{Meter, Progress, Task};

/// A byte-count bar for a transfer of `len` bytes (unknown: a spinner), or `None` when nobody
/// is watching.
pub fn transfer(len: Option<u64>, what: &str, json: bool) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    Some(bar)
}

/// An item-count bar (files applied, files uploaded), or `None` when nobody is watching.
pub fn items(len: u64, what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    Some(bar)
}

/// The sync engine's progress as bars on a terminal's stderr (nothing when nobody watches).
#[derive(Clone, Copy, Debug, Default)]
pub struct Bars;

impl Progress for Bars {
    fn watched(&self) -> bool {
        std::io::stderr().is_terminal()
    }

    fn start(&self, task: Task, len: Option<u64>) -> Option<Box<dyn Meter>> {
        let bar =
            if task.in_bytes() { transfer(len, task.label(), false) } else { items(len.unwrap_or(0), task.label()) };
        bar.map(|b| Box::new(BarMeter(b)) as Box<dyn Meter>)
    }
}

/// One engine task drawn as an indicatif bar.
struct BarMeter(ProgressBar);

impl Meter for BarMeter {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
