//! A replica's starting point: the namespace frozen at a seq in a bootstrap snapshot, portable
//! to the replica's capabilities, which expires a day later (the collector deletes it). Its
//! `tar.gz` is streamed by [`archive`](super::archive).
//!
//! ```text
//!  take (kind bootstrap, portable_to = caps): CreateSnapshot ─▶ freeze ─▶ portability check
//!       ─▶ manifest ─▶ SealSnapshot      (a refusal at any step discards the snapshot)
//! ```

use tideline_storage::{Capabilities, SnapshotRecord, VolumeRecord};

use super::context::Ops;
use super::snapshots::{self, Kind, Take};
use crate::error::ApiResult;
use crate::wire::rfc3339;

/// A bootstrap request.
pub struct Bootstrap {
    /// Default: `sync-bootstrap-YYYYMMDD-HHMMSS` at the clock's reading.
    pub name: Option<String>,
    pub description: Option<String>,
    pub capabilities: Capabilities,
}

/// A sealed bootstrap snapshot: replay the journal after `replay_after_seq`.
#[derive(Debug)]
pub struct Bootstrapped {
    pub snapshot: SnapshotRecord,
    pub replay_after_seq: u64,
}

pub async fn bootstrap(ops: &Ops, vol: &VolumeRecord, b: Bootstrap) -> ApiResult<Bootstrapped> {
    let name = b.name.unwrap_or_else(|| default_name(ops.now_ms()));
    let take = Take { name, description: b.description, kind: Kind::Bootstrap, portable_to: Some(b.capabilities) };
    let (snapshot, replay_after_seq) = snapshots::take(ops, vol, take).await?;
    metrics::counter!("tideline_bootstraps_total").increment(1);
    Ok(Bootstrapped { snapshot, replay_after_seq })
}

/// `sync-bootstrap-20261122-120000` for 2026-11-22T12:00:00.123Z.
fn default_name(now_ms: i64) -> String {
    let stamp = rfc3339(now_ms);
    let digits: String = stamp.chars().take(19).filter(char::is_ascii_digit).collect();
    format!("sync-bootstrap-{}-{}", &digits[..8], &digits[8..])
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;
    use crate::ops::testing::Fixture;
    use crate::ops::{files, snapshots};

    #[test]
    fn the_default_name_is_the_clock_reading() {
        assert_eq!(default_name(1_795_000_000_123), "sync-bootstrap-20261118-110640");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_bootstrap_leaves_no_snapshot_and_the_next_one_is_named_by_the_clock() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        files::write(&f.ops, &vol, "/Makefile".into(), Bytes::from_static(b"a"), Default::default()).await.unwrap();
        files::write(&f.ops, &vol, "/makefile".into(), Bytes::from_static(b"b"), Default::default()).await.unwrap();
        let mac = Capabilities { case_sensitive: false, unicode_normalization_insensitive: true, ..Default::default() };
        let b = Bootstrap { name: None, description: None, capabilities: mac };
        bootstrap(&f.ops, &vol, b).await.unwrap_err();
        assert!(snapshots::list(&f.ops, &vol).unwrap().is_empty(), "discarded");

        let linux = Capabilities { case_sensitive: true, ..Default::default() };
        let b = Bootstrap { name: None, description: None, capabilities: linux };
        let done = bootstrap(&f.ops, &vol, b).await.unwrap();
        assert_eq!(done.replay_after_seq, 2);
        assert_eq!(done.snapshot.name, default_name(f.ops.now_ms()));
    }
}
