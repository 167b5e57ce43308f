//! Key layouts of the column families. Volume ids and paths never contain NUL, so NUL
//! separates components and prefix scans stay exact.
//!
//! ```text
//! volumes     <volume>
//! journal     <volume> 0x00 <seq: u64 big-endian>
//! namespace   <volume> 0x00 <parent dir> 0x00 <name>     (children of a dir are contiguous)
//! fold_index  <volume> 0x00 <normalized path>
//! replicas    <volume> 0x00 <replica id>
//! tokens      <sha256 of token>
//! blobs       <sha256 of content>                          (inline content)
//! volume_blobs <volume> 0x00 <sha256>                        (content a volume has referenced)
//! snapshots   <volume> 0x00 <snapshot id>
//! path_latest <volume> 0x00 <exact path>
//! conflicts   <volume> 0x00 'o' <ordinal u64 BE> | <volume> 0x00 'i' <conflict id>
//! requests    <volume> 0x00 <replica id> 0x00 <request id>  |  0xff <created ms BE> <that key>
//! gc_marks    <sha256> (marked at)  |  'T' <sha256> (swept, object maybe being deleted)
//! sm_meta     "applied"  |  "format"
//! ```

use tideline_types::path;

pub fn volume_prefix(volume: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(volume.len() + 1);
    k.extend_from_slice(volume.as_bytes());
    k.push(0);
    k
}

pub fn journal(volume: &str, seq: u64) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Decodes the seq from a journal key of `volume`.
pub fn journal_seq(volume: &str, key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(volume_prefix(volume).as_slice())?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// Key of a non-root node.
pub fn node(volume: &str, node_path: &str) -> Vec<u8> {
    let (parent, name) = path::split(node_path);
    let mut k = children_prefix(volume, parent);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Prefix of every direct child of `dir`.
pub fn children_prefix(volume: &str, dir: &str) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.extend_from_slice(dir.as_bytes());
    k.push(0);
    k
}

/// The node path a namespace key of `volume` names.
pub fn node_path(volume: &str, key: &[u8]) -> Option<String> {
    let rest = key.strip_prefix(volume_prefix(volume).as_slice())?;
    let sep = rest.iter().position(|&b| b == 0)?;
    let parent = std::str::from_utf8(&rest[..sep]).ok()?;
    let name = std::str::from_utf8(&rest[sep + 1..]).ok()?;
    Some(path::join(parent, name))
}

pub fn volume_blob(volume: &str, sha256: &[u8; 32]) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.extend_from_slice(sha256);
    k
}

pub fn replica(volume: &str, replica_id: &str) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.extend_from_slice(replica_id.as_bytes());
    k
}

pub fn fold(volume: &str, node_path: &str) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.extend_from_slice(path::normalized(node_path).as_bytes());
    k
}

/// `snapshots`: one volume snapshot.
pub fn snapshot(volume: &str, snapshot_id: &str) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.extend_from_slice(snapshot_id.as_bytes());
    k
}

/// `path_latest`: the newest entry that touched an exact path.
pub fn path_latest(volume: &str, node_path: &str) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.extend_from_slice(node_path.as_bytes());
    k
}

/// `conflicts`: every conflict of a volume by ordinal (`prefix`), and one of them.
pub fn conflicts_prefix(volume: &str) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.push(b'o');
    k
}

pub fn conflict(volume: &str, ordinal: u64) -> Vec<u8> {
    let mut k = conflicts_prefix(volume);
    k.extend_from_slice(&ordinal.to_be_bytes());
    k
}

/// `conflicts`: the id index row of a conflict.
pub fn conflict_id(volume: &str, id: &str) -> Vec<u8> {
    let mut k = volume_prefix(volume);
    k.push(b'i');
    k.extend_from_slice(id.as_bytes());
    k
}

/// `requests`: one applied replica append.
pub fn request(volume: &str, replica_id: &str, request_id: &str) -> Vec<u8> {
    let mut k = replica(volume, replica_id);
    k.push(0);
    k.extend_from_slice(request_id.as_bytes());
    k
}

/// `requests`: the expiry index, `0xff <created_at_ms u64 BE> <request key>`. Volume ids are
/// UTF-8, so no request key starts with 0xff.
pub const REQUEST_EXPIRY_PREFIX: u8 = 0xff;

pub fn request_expiry(created_at_ms: i64, request_key: &[u8]) -> Vec<u8> {
    let mut k = vec![REQUEST_EXPIRY_PREFIX];
    k.extend_from_slice(&(created_at_ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(request_key);
    k
}

/// `gc_marks`: a swept digest whose object may still be being deleted.
pub fn gc_tombstone(sha256: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(b'T');
    k.extend_from_slice(sha256);
    k
}

/// `sm_meta`: the last applied log position.
pub const APPLIED: &[u8] = b"applied";

/// The exclusive upper bound of every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip() {
        assert_eq!(journal_seq("v1", &journal("v1", 42)), Some(42));
        assert!(journal("v1", 1) < journal("v1", 256));
        assert_eq!(node_path("v1", &node("v1", "/a/b")), Some("/a/b".into()));
        assert_eq!(node_path("v1", &node("v1", "/a")), Some("/a".into()));
        assert!(node("v1", "/a/b").starts_with(&children_prefix("v1", "/a")));
        assert!(!node("v1", "/a/b/c").starts_with(&children_prefix("v1", "/a")));
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
