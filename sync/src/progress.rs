//! [`Progress`]: how the engine reports long work (the bootstrap download, the files it
//! materializes, the changes it uploads) without drawing anything itself. The CLI implements it
//! with progress bars; the background worker and the tests use [`Silent`].
//!
//! ```text
//! engine ──start(task, len)──▶ Progress ──▶ Meter ──advance(n)…finish()──▶ (bar, log, nothing)
//! ```

/// A piece of long work the engine reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// The bootstrap archive downloading (bytes; its length is unknown up front).
    BootstrapArchive,
    /// Files written from a bootstrap archive (items).
    FilesFromVolume,
    /// Local changes sent to the volume (items).
    ChangesToVolume,
}

impl Task {
    /// What a person reads beside the bar.
    pub fn label(self) -> &'static str {
        match self {
            Task::BootstrapArchive => "bootstrap archive",
            Task::FilesFromVolume => "files from the volume",
            Task::ChangesToVolume => "changes to the volume",
        }
    }

    /// Whether the task counts bytes (else items).
    pub fn in_bytes(self) -> bool {
        matches!(self, Task::BootstrapArchive)
    }
}

/// Where progress goes.
pub trait Progress: Send + Sync {
    /// Whether anyone watches: work done only to size a bar (counting an archive's entries
    /// first) is skipped when not.
    fn watched(&self) -> bool;

    /// `task` starts with `len` units to go (`None`: unknown); `None` back means nothing is
    /// shown for it.
    fn start(&self, task: Task, len: Option<u64>) -> Option<Box<dyn Meter>>;
}

/// One task's running count.
pub trait Meter: Send {
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// The task is over (done or abandoned).
    fn finish(&self);
}

/// Reports nothing: the background worker and the tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn watched(&self) -> bool {
        false
    }

    fn start(&self, _task: Task, _len: Option<u64>) -> Option<Box<dyn Meter>> {
        None
    }
}
