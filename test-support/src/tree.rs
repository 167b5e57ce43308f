//! Directory trees as tests compare them: relative path → kind, content hash and mode bits,
//! read from a local directory, filtered, and diffed for a readable failure.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { mode: u32 },
    File { sha256: String, size: u64, mode: u32 },
    Other(String),
}

/// `/a/b` → entry; the root itself is not listed.
pub type Tree = BTreeMap<String, Entry>;

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn local_tree(root: &Path) -> Result<Tree, String> {
    fn walk(root: &Path, rel: &str, out: &mut Tree) -> Result<(), String> {
        let dir = root.join(rel.trim_start_matches('/'));
        let rd = std::fs::read_dir(&dir).map_err(|e| format!("read_dir {}: {e}", dir.display()))?;
        for entry in rd {
            let entry = entry.map_err(|e| e.to_string())?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}/{name}");
            // Entries may vanish while a worker is applying; the caller polls again.
            let md = std::fs::symlink_metadata(entry.path()).map_err(|e| format!("{path}: {e}"))?;
            let mode = md.permissions().mode() & 0o777;
            if md.is_dir() {
                out.insert(path.clone(), Entry::Dir { mode });
                walk(root, &path, out)?;
            } else if md.is_file() {
                let data = std::fs::read(entry.path()).map_err(|e| format!("{path}: {e}"))?;
                out.insert(path, Entry::File { sha256: sha256(&data), size: data.len() as u64, mode });
            } else {
                out.insert(path, Entry::Other(format!("{:?}", md.file_type())));
            }
        }
        Ok(())
    }
    let mut out = Tree::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

/// The tree without `.git` (anywhere) and without the paths `skip` names.
pub fn without(tree: &Tree, skip: impl Fn(&str) -> bool) -> Tree {
    tree.iter()
        .filter(|(p, _)| !p.split('/').any(|c| c == ".git") && !skip(p))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

pub fn tree_diff(left_name: &str, left: &Tree, right_name: &str, right: &Tree) -> String {
    let mut lines = Vec::new();
    for (p, n) in left {
        match right.get(p) {
            None => lines.push(format!("  {p}: only in {left_name} ({n:?})")),
            Some(m) if m != n => lines.push(format!("  {p}: {left_name} {n:?} != {right_name} {m:?}")),
            _ => {}
        }
    }
    for (p, m) in right {
        if !left.contains_key(p) {
            lines.push(format!("  {p}: only in {right_name} ({m:?})"));
        }
    }
    let total = lines.len();
    lines.truncate(20);
    if total > 20 {
        lines.push(format!("  … {} more", total - 20));
    }
    format!("{left_name} vs {right_name}: {total} differences\n{}", lines.join("\n"))
}

/// The whole namespace of `volume`, walked through the files API: the tree a local directory
/// is compared with.
#[cfg(feature = "client")]
pub async fn remote_tree(client: &tideline_client::Client, volume: &str) -> Result<Tree, String> {
    use tideline_client::types::FileType;
    let mut out = Tree::new();
    let mut dirs = vec!["/".to_string()];
    while let Some(dir) = dirs.pop() {
        let list = client.list_dir(volume, &dir).await.map_err(|e| format!("list {dir}: {e}"))?;
        for e in list.entries {
            let path = e.path.clone();
            let mode = u32::from_str_radix(&e.mode, 8).map_err(|_| format!("{path}: mode {}", e.mode))? & 0o777;
            match e.kind {
                FileType::Dir => {
                    out.insert(path.clone(), Entry::Dir { mode });
                    dirs.push(path);
                }
                FileType::File => {
                    let data = client.read_file(volume, &path).await.map_err(|e| format!("read {path}: {e}"))?;
                    out.insert(path, Entry::File { sha256: sha256(&data), size: data.len() as u64, mode });
                }
                other => {
                    out.insert(path, Entry::Other(format!("{other:?}")));
                }
            }
        }
    }
    Ok(out)
}

/// Every local directory in `dirs` holds exactly the tree of `volume`; that tree.
#[cfg(feature = "client")]
pub async fn converged(client: &tideline_client::Client, volume: &str, dirs: &[&Path]) -> Result<Tree, String> {
    let vol = remote_tree(client, volume).await?;
    for d in dirs {
        let local = local_tree(d)?;
        if local != vol {
            return Err(tree_diff(&d.display().to_string(), &local, "volume", &vol));
        }
    }
    Ok(vol)
}
