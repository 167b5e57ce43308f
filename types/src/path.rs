//! Logical volume paths: `clean("/" + trim(p))`, so `..` never escapes the root.
//!
//! A clean path is `/` or `/a/b` — no empty, `.` or `..` components, no trailing slash.

use unicode_normalization::UnicodeNormalization;

/// A clean path's bytes at most ([`crate::limits::PATH_BYTES_MAX`]).
pub const PATH_BYTES_MAX: usize = crate::limits::PATH_BYTES_MAX;
/// One component's bytes at most ([`crate::limits::PATH_COMPONENT_BYTES_MAX`]).
pub const COMPONENT_BYTES_MAX: usize = crate::limits::PATH_COMPONENT_BYTES_MAX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is required")]
    Required,
    #[error("invalid path: {0}")]
    Invalid(&'static str),
}

/// Cleans a client-supplied path. Empty (after trimming) is [`PathError::Required`].
pub fn clean(raw: &str) -> Result<String, PathError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(PathError::Required);
    }
    if trimmed.contains('\0') {
        return Err(PathError::Invalid("path contains a NUL byte"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => {
                if p.len() > COMPONENT_BYTES_MAX {
                    return Err(PathError::Invalid("path component longer than 255 bytes"));
                }
                parts.push(p);
            }
        }
    }
    let out = if parts.is_empty() { "/".to_string() } else { format!("/{}", parts.join("/")) };
    if out.len() > PATH_BYTES_MAX {
        return Err(PathError::Invalid("path longer than 4096 bytes"));
    }
    Ok(out)
}

/// Like [`clean`], but `/` itself is refused (writes, deletes, moves).
pub fn clean_non_root(raw: &str) -> Result<String, PathError> {
    let p = clean(raw)?;
    if p == "/" {
        return Err(PathError::Invalid("the root is not allowed here"));
    }
    Ok(p)
}

pub fn is_root(path: &str) -> bool {
    path == "/"
}

/// Splits a clean non-root path into (parent, name): `/a/b` → (`/a`, `b`), `/a` → (`/`, `a`).
pub fn split(path: &str) -> (&str, &str) {
    debug_assert!(path.starts_with('/') && path != "/");
    let idx = path.rfind('/').unwrap_or(0);
    let parent = if idx == 0 { "/" } else { &path[..idx] };
    (parent, &path[idx + 1..])
}

/// The last component (`/` for the root).
pub fn name(path: &str) -> &str {
    if is_root(path) {
        "/"
    } else {
        split(path).1
    }
}

/// Joins a clean directory path and a name.
pub fn join(dir: &str, name: &str) -> String {
    if is_root(dir) {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Proper ancestors of a clean path, excluding the root, outermost first: `/a/b/c` → `/a`, `/a/b`.
pub fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('/').skip(1).map(|(i, _)| &path[..i]).collect()
}

/// True if `path` is `dir` or lies below it.
pub fn is_within(path: &str, dir: &str) -> bool {
    is_root(dir) || path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Replaces the `from` prefix of `path` (which [`is_within`] `from`) with `to`.
pub fn rebase(path: &str, from: &str, to: &str) -> String {
    if path == from {
        return to.to_string();
    }
    let rest = &path[from.len()..];
    if is_root(to) {
        rest.to_string()
    } else {
        format!("{to}{rest}")
    }
}

/// The collision key of a path: every segment NFD, then lowercased.
pub fn normalized(path: &str) -> String {
    path.nfd().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_escapes_the_root() {
        assert_eq!(clean("a/b").unwrap(), "/a/b");
        assert_eq!(clean("  /a//b/./c/ ").unwrap(), "/a/b/c");
        assert_eq!(clean("../../etc/passwd").unwrap(), "/etc/passwd");
        assert_eq!(clean("/a/../../..").unwrap(), "/");
        assert_eq!(clean("/").unwrap(), "/");
        assert_eq!(clean(""), Err(PathError::Required));
        assert_eq!(clean("   "), Err(PathError::Required));
        assert!(matches!(clean("a\0b"), Err(PathError::Invalid(_))));
        assert!(matches!(clean(&"x".repeat(256)), Err(PathError::Invalid(_))));
        assert!(clean(&"x".repeat(255)).is_ok());
        assert!(matches!(clean(&"/abcdefgh".repeat(500)), Err(PathError::Invalid(_))));
        assert!(matches!(clean_non_root("/.."), Err(PathError::Invalid(_))));
    }

    #[test]
    fn split_join_ancestors() {
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(split("/a/b/c"), ("/a/b", "c"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(ancestors("/a/b/c"), vec!["/a", "/a/b"]);
        assert!(ancestors("/a").is_empty());
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/x", "/"));
        assert_eq!(rebase("/a/b/c", "/a", "/z"), "/z/b/c");
        assert_eq!(rebase("/a", "/a", "/z/y"), "/z/y");
    }

    #[test]
    fn normalized_folds_case_and_unicode() {
        assert_eq!(normalized("/Café/X"), normalized("/cafe\u{301}/x"));
        assert_ne!(normalized("/a"), normalized("/b"));
    }
}
