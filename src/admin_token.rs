//! The node's admin token: given (`--admin-token` / `TIDELINE_ADMIN_TOKEN`), or read from
//! `<data-dir>/admin.token`, or generated on first start, stored there (0600) and printed once.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

const FILE: &str = "admin.token";

pub fn resolve(data_dir: &Path, given: Option<String>) -> anyhow::Result<String> {
    if let Some(t) = given.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => anyhow::bail!("{} is empty; remove it to generate a new admin token", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("read admin token file"),
    }
    let secret: [u8; 32] = rand::random();
    let token = format!("tla_{}", hex::encode(secret));
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    {
        let mut f = open_private(&tmp).context("create admin token file")?;
        f.write_all(token.as_bytes()).context("write admin token file")?;
        f.sync_all().context("sync admin token file")?;
    }
    std::fs::rename(&tmp, &path).context("install admin token file")?;
    std::fs::File::open(data_dir).and_then(|d| d.sync_all()).context("sync data dir")?;
    println!("admin token (shown once, stored in {}): {token}", path.display());
    Ok(token)
}

#[cfg(unix)]
fn open_private(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(p)
}

#[cfg(not(unix))]
fn open_private(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(p)
}
