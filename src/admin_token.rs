//! The node's admin token: given (`--admin-token` / `TIDELINE_ADMIN_TOKEN`), or read from
//! `<data-dir>/admin.token`, or generated on first start and stored there (0600, written
//! atomically and durably). The token itself is never printed: logs and journald keep what a
//! process prints, so only the file's path is.

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
    tideline_durable::write(&path, token.as_bytes(), 0o600).context("store the admin token")?;
    println!("generated an admin token, stored in {} (0600)", path.display());
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_stored_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let token = resolve(dir.path(), None).unwrap();
        assert!(token.starts_with("tla_") && token.len() == 4 + 64, "{token}");
        let path = dir.path().join(FILE);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(resolve(dir.path(), None).unwrap(), token, "the stored token is read back");
        assert_eq!(resolve(dir.path(), Some(" given ".into())).unwrap(), "given");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE], "no temp file is left behind");
    }
}
