//! [`Inodes`]: the mount's inode table — which path each inode number names now, how many
//! kernel lookups it holds, and what is open or staged on it.
//!
//! ```text
//!  ino = 1                      the volume root "/"
//!  ino = hash(path) (≥ 2)       every other path, so a remount gives a file the number it had
//!                               (git's index compares st_ino); a collision takes the next free one
//!  rename                       the inode keeps its number and moves (with everything below it)
//!  forget / last close          the entry goes once the kernel holds no lookup and nothing is open
//! ```

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// The root's inode number (FUSE's `FUSE_ROOT_ID`).
pub const ROOT_INO: u64 = 1;

/// One inode: the path it names and who still holds it.
#[derive(Debug, Clone, Default)]
pub struct Inode {
    pub path: String,
    /// Kernel references (`lookup`, `create`, `mkdir` add one; `forget` takes them back).
    pub lookups: u64,
    /// Open file handles on it.
    pub open: u64,
    /// Removed from the namespace while the kernel or a handle still held it.
    pub unlinked: bool,
}

/// Path ⇄ inode number, for the life of one mount.
#[derive(Debug)]
pub struct Inodes {
    by_ino: HashMap<u64, Inode>,
    by_path: HashMap<String, u64>,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut t = Inodes { by_ino: HashMap::new(), by_path: HashMap::new() };
        t.by_ino.insert(ROOT_INO, Inode { path: "/".into(), lookups: 1, ..Default::default() });
        t.by_path.insert("/".into(), ROOT_INO);
        t
    }
}

/// The number a path asks for: 63 bits of its SHA-256, never 0 or the root's.
pub fn preferred_ino(path: &str) -> u64 {
    let digest = Sha256::digest(path.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 1;
    n.max(ROOT_INO + 1)
}

impl Inodes {
    pub fn get(&self, ino: u64) -> Option<&Inode> {
        self.by_ino.get(&ino)
    }

    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Inode> {
        self.by_ino.get_mut(&ino)
    }

    /// The path `ino` names now, if the table knows it.
    pub fn path(&self, ino: u64) -> Option<String> {
        self.by_ino.get(&ino).map(|i| i.path.clone())
    }

    /// The inode of `path`, if one is live.
    pub fn ino_of(&self, path: &str) -> Option<u64> {
        self.by_path.get(path).copied()
    }

    /// The inode for `path` with one more kernel lookup, made if needed.
    pub fn lookup(&mut self, path: &str) -> u64 {
        let ino = self.ensure(path);
        if let Some(i) = self.by_ino.get_mut(&ino) {
            i.lookups += 1;
        }
        ino
    }

    /// The inode for `path`, made if needed, without taking a kernel reference (readdir).
    pub fn ensure(&mut self, path: &str) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        let mut ino = preferred_ino(path);
        while self.by_ino.contains_key(&ino) {
            ino = ino.wrapping_add(1).max(ROOT_INO + 1);
        }
        self.by_ino.insert(ino, Inode { path: path.to_string(), ..Default::default() });
        self.by_path.insert(path.to_string(), ino);
        ino
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(i) = self.by_ino.get_mut(&ino) {
            i.lookups = i.lookups.saturating_sub(n);
        }
        self.collect(ino);
    }

    /// Drops `ino` if nothing holds it any more (never the root).
    pub fn collect(&mut self, ino: u64) {
        let Some(i) = self.by_ino.get(&ino) else { return };
        if ino == ROOT_INO || i.lookups > 0 || i.open > 0 {
            return;
        }
        let i = self.by_ino.remove(&ino).expect("present");
        if self.by_path.get(&i.path) == Some(&ino) {
            self.by_path.remove(&i.path);
        }
    }

    /// `path` left the namespace: its inode (if any) no longer names it.
    pub fn unlink(&mut self, path: &str) {
        if let Some(ino) = self.by_path.remove(path) {
            if let Some(i) = self.by_ino.get_mut(&ino) {
                i.unlinked = true;
            }
            self.collect(ino);
        }
    }

    /// `from` (and everything below it) now lives at `to`; whatever was at `to` is unlinked.
    pub fn rename(&mut self, from: &str, to: &str) {
        self.unlink(to);
        let prefix = format!("{}/", from.trim_end_matches('/'));
        let moved: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&prefix))
            .map(|(p, ino)| (p.clone(), *ino))
            .collect();
        for (old, ino) in moved {
            let new = format!("{to}{}", &old[from.len()..]);
            self.by_path.remove(&old);
            self.by_path.insert(new.clone(), ino);
            if let Some(i) = self.by_ino.get_mut(&ino) {
                i.path = new;
            }
        }
    }

    /// How many inodes the table holds (the root included).
    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_gets_the_same_number_in_every_table() {
        let mut a = Inodes::default();
        let mut b = Inodes::default();
        assert_eq!(a.lookup("/src/main.rs"), b.lookup("/src/main.rs"));
        assert_eq!(a.lookup("/src/main.rs"), preferred_ino("/src/main.rs"));
        assert_eq!(a.lookup("/"), ROOT_INO);
    }

    #[test]
    fn rename_moves_an_inode_and_everything_below_it() {
        let mut t = Inodes::default();
        let dir = t.lookup("/a");
        let file = t.lookup("/a/b/c.txt");
        let victim = t.lookup("/z");
        t.rename("/a", "/z");
        assert_eq!(t.ino_of("/z"), Some(dir));
        assert_eq!(t.path(file).as_deref(), Some("/z/b/c.txt"));
        assert_eq!(t.ino_of("/a"), None);
        assert_eq!(t.ino_of("/ab"), None);
        assert!(t.get(victim).unwrap().unlinked, "the replaced inode is unlinked, still held by its lookup");
    }

    #[test]
    fn an_inode_goes_when_the_kernel_forgets_it_and_nothing_is_open() {
        let mut t = Inodes::default();
        let ino = t.lookup("/f");
        t.get_mut(ino).unwrap().open = 1;
        t.forget(ino, 1);
        assert!(t.get(ino).is_some(), "still open");
        t.get_mut(ino).unwrap().open = 0;
        t.collect(ino);
        assert!(t.get(ino).is_none());
        assert_eq!(t.ino_of("/f"), None);
        t.forget(ROOT_INO, 1);
        assert!(t.get(ROOT_INO).is_some(), "the root stays");
    }

    #[test]
    fn a_collision_takes_the_next_free_number() {
        let mut t = Inodes::default();
        let a = t.lookup("/a");
        // Plant another path on /b's number to force the collision.
        let b_ino = preferred_ino("/b");
        t.by_ino.insert(b_ino, Inode { path: "/other".into(), lookups: 1, ..Default::default() });
        let b = t.lookup("/b");
        assert_ne!(b, b_ino);
        assert_ne!(b, a);
        assert_eq!(t.path(b).as_deref(), Some("/b"));
    }
}
