//! What `scripts/package-deb` puts in the package, checked without building one (that needs
//! cargo-deb): the man pages and completions `generate-assets` writes, the systemd unit as
//! `systemd-analyze verify` reads it, and the default config as the server reads it.

use std::path::PathBuf;
use std::process::Command;

/// The checkout this test runs from, read at run time (a binary in a shared target dir may have
/// been built by another clone).
fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
}

#[test]
fn generate_assets_writes_a_man_page_per_command_and_three_completions() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["generate-assets", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    for page in [
        "tideline",
        "tideline-server",
        "tideline-cluster-status",
        "tideline-volume-files-upload",
        "tideline-sync-attach",
    ] {
        let text = std::fs::read_to_string(out.path().join("man").join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(text.contains(&format!(".TH {page} 1")), "{page}.1 has no title:\n{text}");
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{page}.1 names no version");
    }
    let server = std::fs::read_to_string(out.path().join("man/tideline-server.1")).unwrap();
    assert!(server.contains("config"), "the server page documents --config");
    assert!(!out.path().join("man/tideline-generate-assets.1").exists(), "hidden commands get no page");
    for file in ["tideline.bash", "_tideline", "tideline.fish"] {
        let text = std::fs::read_to_string(out.path().join("completions").join(file)).unwrap();
        assert!(text.contains("tideline") && text.contains("server"), "{file} does not complete `tideline server`");
    }
}

#[test]
fn the_systemd_unit_verifies_and_runs_the_packaged_config() {
    let unit = std::fs::read_to_string(repo().join("packaging/tideline.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/tideline server --config /etc/tideline/tideline.toml"));
    for hardening in ["DynamicUser=yes", "StateDirectory=tideline", "ProtectSystem=strict", "NoNewPrivileges=yes"] {
        assert!(unit.contains(hardening), "the unit lacks {hardening}");
    }
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    // `verify` insists that ExecStart's binary exists: point it at the one under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tideline.service");
    std::fs::write(&copy, unit.replace("/usr/bin/tideline", env!("CARGO_BIN_EXE_tideline"))).unwrap();
    // --man=no: the Documentation= page is installed by the package, not on this machine.
    let out = Command::new(analyze).args(["verify", "--man=no"]).arg(&copy).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(!stderr.contains("tideline.service:"), "systemd-analyze found problems in the unit: {stderr}");
}

fn which(cmd: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(cmd)).find(|p| p.is_file()))
        .ok_or(())
}
