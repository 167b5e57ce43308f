//! Where a conflict's rejected content goes: `<dir>/<stem>.conflict-<replica>-seq-<n><ext>`
//! beside the path it lost on, and a portable spelling for a path no replica could hold.

use crate::path;

/// `"/docs/a.txt", Some("Laptop 1"), 7` → `"/docs/a.conflict-laptop-1-seq-7.txt"`. A name that
/// starts with its only dot (`.env`) has no extension.
pub fn artifact_path(conflict_path: &str, replica: Option<&str>, seq: u64) -> String {
    let (dir, name) = path::split(conflict_path);
    let name = if name.is_empty() { "conflict" } else { name };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    let actor = replica.map(sanitize_actor).unwrap_or_else(|| "sandbox".to_string());
    path::join(dir, &format!("{stem}.conflict-{actor}-seq-{seq}{ext}"))
}

/// Lowercase ASCII letters and digits; anything else becomes `-`.
fn sanitize_actor(replica: &str) -> String {
    let s: String = replica
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-');
    if s.is_empty() {
        "replica".to_string()
    } else {
        s.to_string()
    }
}

/// The path with every segment made representable on Windows: forbidden and control
/// characters become `_`, a trailing dot or space becomes `_`, a reserved device name gets a
/// leading `_`.
pub fn portable(p: &str) -> String {
    let mut out = String::from("/");
    for (i, segment) in p.split('/').filter(|s| !s.is_empty()).enumerate() {
        if i > 0 {
            out.push('/');
        }
        let mut seg: String =
            segment.chars().map(|c| if (c as u32) < 0x20 || "<>:\"\\|?*".contains(c) { '_' } else { c }).collect();
        if seg.ends_with('.') || seg.ends_with(' ') {
            seg.pop();
            seg.push('_');
        }
        let caps = crate::portability::Capabilities {
            case_sensitive: true,
            unicode_normalization_insensitive: false,
            windows_compatible_paths: true,
        };
        if !crate::portability::path_issues(&format!("/{seg}"), caps).is_empty() {
            seg.insert(0, '_');
        }
        out.push_str(&seg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names() {
        assert_eq!(artifact_path("/docs/a.txt", Some("Laptop 1"), 7), "/docs/a.conflict-laptop-1-seq-7.txt");
        assert_eq!(artifact_path("/a.tar.gz", Some("r"), 1), "/a.tar.conflict-r-seq-1.gz");
        assert_eq!(artifact_path("/.env", None, 3), "/.env.conflict-sandbox-seq-3");
        assert_eq!(artifact_path("/Makefile", Some("!!"), 2), "/Makefile.conflict-replica-seq-2");
    }

    #[test]
    fn portable_spelling_has_no_issues() {
        let caps = crate::portability::Capabilities {
            case_sensitive: false,
            unicode_normalization_insensitive: true,
            windows_compatible_paths: true,
        };
        for p in ["/CON/a:b", "/x/name.", "/tab\there ", "/lpt1.txt", "/ok/fine.txt"] {
            let q = portable(p);
            assert!(crate::portability::path_issues(&q, caps).is_empty(), "{p} -> {q}");
        }
        assert_eq!(portable("/ok/fine.txt"), "/ok/fine.txt");
        assert_eq!(portable("/CON/a:b"), "/_CON/a_b");
    }
}
