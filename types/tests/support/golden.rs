//! The golden files and how a test compares against them, shared by `types/tests/golden.rs`
//! and `api/tests/wire_golden.rs` (which includes this file by path).

use std::path::PathBuf;

use serde::Serialize;
use tideline_types::wire::success_body;

/// `types/tests/golden/`, found from the including crate's directory (both sit in the workspace root).
fn dir() -> PathBuf {
    // Read at run time (cargo sets it for the test process): a binary another clone built into
    // the shared target dir carries that clone's path in `env!`.
    let crate_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    crate_dir.parent().expect("a workspace member has a parent").join("types/tests/golden")
}

pub fn golden(name: &str) -> String {
    let path = dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The body as the server sends it (`envelope::ok`), plus the newline the golden files end with.
pub fn ok<T: Serialize>(data: &T) -> String {
    serde_json::to_string(&success_body(data).unwrap()).unwrap() + "\n"
}

/// Fails naming the first byte where `got` differs from the golden file `name`.
#[track_caller]
pub fn check(name: &str, got: String) {
    let want = golden(name);
    if got != want {
        let at = got.bytes().zip(want.bytes()).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{name} differs at byte {at}:\n want {want}\n got  {got}");
    }
}
