//! Portability of paths to a file system's capabilities: which names a replica cannot hold.
//!
//! ```text
//!  windows_compatible_paths  ─▶ per segment: windows_reserved_name (CON PRN AUX NUL COM1-9
//!                               LPT1-9, any case, up to the first '.'), windows_trailing_dot_space,
//!                               windows_forbidden_character (<>:"\|?*), windows_control_character
//!  !case_sensitive           ─▶ casefold_collision: two paths equal after NFD + lowercase
//!  unicode-insensitive only  ─▶ casefold_collision: two paths equal after NFD (NFC/NFD twins)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// What a file system can represent: a replica's, probed by the sync worker from the real
/// file system, or a volume's merged policy (the server stores it as its own record and
/// converts it with `From`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capabilities {
    pub case_sensitive: bool,
    pub unicode_normalization_insensitive: bool,
    pub windows_compatible_paths: bool,
}

impl From<&Capabilities> for Capabilities {
    fn from(c: &Capabilities) -> Self {
        *c
    }
}

/// One reason a path cannot be represented (the `issues` of API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortabilityIssue {
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized_path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    pub message: String,
}

const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '\\', '|', '?', '*'];

fn is_reserved(segment: &str) -> bool {
    let stem = segment.split('.').next().unwrap_or("").to_ascii_uppercase();
    RESERVED.contains(&stem.as_str())
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && matches!(stem.as_bytes()[3], b'1'..=b'9'))
}

fn segment_issue(code: &'static str, path: &str, segment: &str, message: &str) -> PortabilityIssue {
    PortabilityIssue {
        code,
        path: Some(path.to_string()),
        normalized_path: Some(crate::path::normalized(path)),
        paths: Vec::new(),
        segment: Some(segment.to_string()),
        message: message.to_string(),
    }
}

/// Issues of one clean path's own segments (the Windows rules, if the capabilities need them).
pub fn path_issues(path: &str, caps: impl Into<Capabilities>) -> Vec<PortabilityIssue> {
    let caps: Capabilities = caps.into();
    let mut out = Vec::new();
    if !caps.windows_compatible_paths {
        return out;
    }
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if is_reserved(segment) {
            out.push(segment_issue("windows_reserved_name", path, segment, "reserved device name on Windows"));
        }
        if segment.ends_with('.') || segment.ends_with(' ') {
            out.push(segment_issue(
                "windows_trailing_dot_space",
                path,
                segment,
                "Windows drops a trailing dot or space",
            ));
        }
        if segment.contains(FORBIDDEN) {
            out.push(segment_issue("windows_forbidden_character", path, segment, "character not allowed on Windows"));
        }
        if segment.chars().any(|c| (c as u32) < 0x20) {
            out.push(segment_issue(
                "windows_control_character",
                path,
                segment,
                "control character not allowed on Windows",
            ));
        }
    }
    out
}

/// The key under which two paths collide for these capabilities (`None`: they never do).
pub fn collision_key(path: &str, caps: impl Into<Capabilities>) -> Option<String> {
    let caps: Capabilities = caps.into();
    if !caps.case_sensitive {
        Some(crate::path::normalized(path))
    } else if caps.unicode_normalization_insensitive {
        Some(path.nfd().collect())
    } else {
        None
    }
}

/// Every issue of a whole namespace: each path's own, and every group of colliding paths.
pub fn namespace_issues<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    caps: impl Into<Capabilities>,
) -> Vec<PortabilityIssue> {
    let caps: Capabilities = caps.into();
    let mut out = Vec::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in paths {
        out.extend(path_issues(p, caps));
        if let Some(k) = collision_key(p, caps) {
            groups.entry(k).or_default().push(p.to_string());
        }
    }
    for (key, mut paths) in groups.into_iter().filter(|(_, ps)| ps.len() > 1) {
        paths.sort();
        out.push(PortabilityIssue {
            code: "casefold_collision",
            path: Some(paths[0].clone()),
            normalized_path: Some(key),
            paths,
            segment: None,
            message: "paths differ only in case or Unicode normalization".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: Capabilities = Capabilities {
        case_sensitive: true,
        unicode_normalization_insensitive: false,
        windows_compatible_paths: false,
    };
    const MAC: Capabilities = Capabilities {
        case_sensitive: false,
        unicode_normalization_insensitive: true,
        windows_compatible_paths: false,
    };
    const WINDOWS: Capabilities =
        Capabilities { case_sensitive: false, unicode_normalization_insensitive: true, windows_compatible_paths: true };
    const UNICODE_ONLY: Capabilities =
        Capabilities { case_sensitive: true, unicode_normalization_insensitive: true, windows_compatible_paths: false };

    fn codes(paths: &[&str], caps: &Capabilities) -> Vec<&'static str> {
        namespace_issues(paths.iter().copied(), caps).into_iter().map(|i| i.code).collect()
    }

    #[test]
    fn each_windows_rule_has_its_code_and_linux_accepts_all() {
        let cases = [
            ("/dir/CON", "windows_reserved_name"),
            ("/nul.txt", "windows_reserved_name"),
            ("/a/com7.log.gz", "windows_reserved_name"),
            ("/Lpt1", "windows_reserved_name"),
            ("/name.", "windows_trailing_dot_space"),
            ("/dir /x", "windows_trailing_dot_space"),
            ("/a:b", "windows_forbidden_character"),
            ("/what?", "windows_forbidden_character"),
            ("/tab\there", "windows_control_character"),
        ];
        for (p, code) in cases {
            assert_eq!(codes(&[p], &WINDOWS), vec![code], "{p}");
            assert!(codes(&[p], &LINUX).is_empty(), "{p} is fine on Linux");
        }
        assert!(codes(&["/console", "/com10", "/lpt0", "/auxiliary.txt", "/a.b"], &WINDOWS).is_empty());
    }

    #[test]
    fn collisions_follow_the_capabilities() {
        let nfc = "/caf\u{e9}";
        let nfd = "/cafe\u{301}";
        assert_eq!(codes(&["/Readme", "/README"], &MAC), vec!["casefold_collision"]);
        assert_eq!(codes(&[nfc, nfd], &MAC), vec!["casefold_collision"]);
        assert_eq!(codes(&[nfc, nfd], &UNICODE_ONLY), vec!["casefold_collision"]);
        assert!(codes(&["/Readme", "/README"], &UNICODE_ONLY).is_empty());
        assert!(codes(&["/Readme", "/README", nfc, nfd], &LINUX).is_empty());
        let issue = &namespace_issues(["/b/X", "/b/x", "/c"], MAC)[0];
        assert_eq!(issue.paths, vec!["/b/X".to_string(), "/b/x".to_string()]);
        assert_eq!(issue.normalized_path.as_deref(), Some("/b/x"));
        let json = serde_json::to_value(issue).unwrap();
        assert!(json.get("segment").is_none(), "absent fields are omitted: {json}");
    }
}
