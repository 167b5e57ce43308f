//! The bounds clients and server agree on, in one place, tied together at compile time.
//!
//! Only what crosses the wire (or must match across crates) is here: request and page sizes a
//! client has to respect, the lease a sync client has to renew, the batch a sync client sends.
//! Server-internal tuning (Raft batching, queue depths, concurrency budgets) stays beside the
//! code it tunes. Each limit names its unit last (`…_BYTES_MAX`, `…_MS`).
//!
//! ```text
//!  sync worker batch ≤ SYNC_BATCH_CHANGES_MAX changes ≤ CHANGES_PER_REQUEST_MAX
//!                    content ≤ max(SYNC_BATCH_CONTENT_BYTES_MAX, FILE_BYTES_MAX) ─base64─┐
//!                    + paths                                           ≤ APPEND_BODY_BYTES_MAX
//!  sync worker page  SYNC_PAGE_ENTRIES ≤ CHANGES_PAGE_ENTRIES_MAX;  long poll ≤ CHANGES_WAIT_MS_MAX
//!  replica lease     renewed every SYNC_LEASE_RENEW_MS, 3 × that ≤ REPLICA_LEASE_MS
//!  watch             pings every WATCH_PING_INTERVAL, 2 × that < WATCH_CLIENT_SILENCE_MAX
//! ```

use std::time::Duration;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

// --- Paths ---------------------------------------------------------------------------------

/// A path, in bytes (longer: 400 `invalid path`).
pub const PATH_BYTES_MAX: usize = 4096;
/// One path component, in bytes.
pub const PATH_COMPONENT_BYTES_MAX: usize = 255;

// --- Request bodies ------------------------------------------------------------------------

/// One file: the body of a files-API write, or the decoded content of one sync change
/// (past it: 413).
pub const FILE_BYTES_MAX: usize = 100 * MIB;
/// A JSON request body on every route but appends (past it: 413).
pub const JSON_BODY_BYTES_MAX: usize = MIB;
/// Changes in one append request.
pub const CHANGES_PER_REQUEST_MAX: usize = 1000;
/// Room an append body has besides one largest file's base64: the other fields and changes.
pub const APPEND_OTHER_BYTES_MAX: usize = 8 * MIB;
/// One append request body: one largest file, base64-encoded, plus the rest.
pub const APPEND_BODY_BYTES_MAX: usize = FILE_BYTES_MAX / 3 * 4 + APPEND_OTHER_BYTES_MAX;
/// An append's `request_id`, in bytes.
pub const REQUEST_ID_BYTES_MAX: usize = 256;
/// How long the server remembers a `request_id` (a retry within it is answered once).
pub const REQUEST_ID_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// A change's `metadata`, serialized, in bytes.
pub const CHANGE_METADATA_BYTES_MAX: usize = 16 * KIB;
/// A replica id (the `{rid}` of the replica routes), in bytes.
pub const REPLICA_ID_BYTES_MAX: usize = 128;
/// A replica's `display_name`, `platform` and `root_path`, each, in bytes.
pub const REPLICA_TEXT_BYTES_MAX: usize = 1024;
/// A conflict's `resolution` and `note`, each, in bytes.
pub const CONFLICT_NOTE_BYTES_MAX: usize = 4096;
/// A snapshot's `name`, in bytes.
pub const SNAPSHOT_NAME_BYTES_MAX: usize = 256;
/// A snapshot's `description`, in bytes.
pub const SNAPSHOT_DESCRIPTION_BYTES_MAX: usize = 4096;
/// The `team_id` of a minted token, in bytes.
pub const TEAM_ID_BYTES_MAX: usize = 128;

// --- Pages and lists -----------------------------------------------------------------------

/// `sync/changes` entries per page when `limit` is absent or 0.
pub const CHANGES_PAGE_ENTRIES_DEFAULT: usize = 256;
/// `sync/changes` entries per page, at most (a larger `limit` is capped).
pub const CHANGES_PAGE_ENTRIES_MAX: usize = 2048;
/// A `sync/changes` page is cut after the entry that brings its body to this many bytes.
pub const CHANGES_PAGE_BYTES_MAX: usize = 8 * MIB;
/// `sync/changes?wait_ms=` waits at most this long for the first new entry.
pub const CHANGES_WAIT_MS_MAX: u64 = 30_000;
/// `sync/conflicts` per page when `limit` is absent or 0.
pub const CONFLICTS_PAGE_DEFAULT: usize = 100;
/// `sync/conflicts` per page, at most.
pub const CONFLICTS_PAGE_MAX: usize = 1000;
/// `GET /tokens` per page when `limit` is absent or 0.
pub const TOKENS_PAGE_DEFAULT: usize = 100;
/// `GET /tokens` per page, at most.
pub const TOKENS_PAGE_MAX: usize = 1000;
/// A token's `name`, at most.
pub const TOKEN_NAME_BYTES_MAX: usize = 128;
/// A token's `ttl_seconds`, at most (ten years).
pub const TOKEN_TTL_SECONDS_MAX: u64 = 10 * 366 * 24 * 3600;
/// Volumes one `GET /sandboxvolumes` returns, at most.
pub const VOLUME_LIST_ENTRIES_MAX: usize = 10_000;
/// Entries of one directory `files/list` returns; a larger directory is refused (409).
pub const DIR_LIST_ENTRIES_MAX: usize = 10_000;

// --- Leases and retention ------------------------------------------------------------------

/// A replica's lease: it lapses this long after the last upsert, append or cursor update.
pub const REPLICA_LEASE_MS: i64 = 5 * 60 * 1000;
/// How long a bootstrap snapshot (and its archive) stays downloadable.
pub const BOOTSTRAP_SNAPSHOT_TTL_MS: i64 = 24 * 60 * 60 * 1000;

// --- The sync worker (a client of the above) -----------------------------------------------

/// Entries the sync worker asks for per `changes` page.
pub const SYNC_PAGE_ENTRIES: usize = 1024;
/// The sync worker's long poll (`wait_ms`).
pub const SYNC_LONG_POLL_MS: u64 = 25_000;
/// The sync worker renews its replica's lease this often.
pub const SYNC_LEASE_RENEW_MS: i64 = 60_000;
/// Changes in one sync worker batch, at most.
pub const SYNC_BATCH_CHANGES_MAX: usize = CHANGES_PER_REQUEST_MAX;
/// File content in one sync worker batch: a batch ends before the file that would take it past
/// this, so a batch holds at most this much, or one file alone (≤ [`FILE_BYTES_MAX`]).
pub const SYNC_BATCH_CONTENT_BYTES_MAX: usize = 8 * MIB;

// --- Watch ---------------------------------------------------------------------------------

/// Events queued for one watch subscription; one more and they become a single `invalidate`.
pub const WATCH_QUEUED_EVENTS_MAX: usize = 256;
/// Subscriptions one watch connection may hold at once.
pub const WATCH_SUBSCRIPTIONS_PER_CONNECTION_MAX: usize = 64;
/// A client frame (and message) on a watch connection, in bytes.
pub const WATCH_CLIENT_MESSAGE_BYTES_MAX: usize = 64 * KIB;
/// The server pings a watch client this often.
pub const WATCH_PING_INTERVAL: Duration = Duration::from_secs(30);
/// A watch client that sends nothing (not even a pong) for this long is gone.
pub const WATCH_CLIENT_SILENCE_MAX: Duration = Duration::from_secs(75);

/// Length of the base64 (padded) of `n` bytes.
pub const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

// --- What ties them ------------------------------------------------------------------------

// A sync batch is one append: its changes fit one request, and its content (base64) plus two
// full-length paths per change fit one body.
const _: () = assert!(SYNC_BATCH_CHANGES_MAX <= CHANGES_PER_REQUEST_MAX);
const _: () = assert!(
    base64_len(max(SYNC_BATCH_CONTENT_BYTES_MAX, FILE_BYTES_MAX)) + SYNC_BATCH_CHANGES_MAX * 2 * PATH_BYTES_MAX
        <= APPEND_BODY_BYTES_MAX
);
// A body holds one largest file's base64 (whole, up to padding rounding) besides the rest.
const _: () = assert!(base64_len(FILE_BYTES_MAX) <= APPEND_BODY_BYTES_MAX);
// JSON bodies are smaller than anything content-bearing, and a change's metadata fits one.
const _: () = assert!(CHANGE_METADATA_BYTES_MAX < JSON_BODY_BYTES_MAX && JSON_BODY_BYTES_MAX < FILE_BYTES_MAX);
// Pages: defaults within maxima; what the worker asks for is never capped, so a page of
// exactly SYNC_PAGE_ENTRIES tells it more is waiting; its long poll is never cut short.
const _: () = assert!(CHANGES_PAGE_ENTRIES_DEFAULT <= CHANGES_PAGE_ENTRIES_MAX);
const _: () = assert!(CONFLICTS_PAGE_DEFAULT <= CONFLICTS_PAGE_MAX);
const _: () = assert!(SYNC_PAGE_ENTRIES <= CHANGES_PAGE_ENTRIES_MAX);
const _: () = assert!(SYNC_LONG_POLL_MS <= CHANGES_WAIT_MS_MAX);
// A path component fits in a path.
const _: () = assert!(PATH_COMPONENT_BYTES_MAX < PATH_BYTES_MAX);
// The worker renews its lease at least three times per lease, so two lost renewals in a row
// do not expire it.
const _: () = assert!(SYNC_LEASE_RENEW_MS * 3 <= REPLICA_LEASE_MS);
// A watch client that answers every ping is never taken for gone, even with one pong late.
const _: () = assert!(WATCH_PING_INTERVAL.as_millis() * 2 < WATCH_CLIENT_SILENCE_MAX.as_millis());
// A bootstrap archive outlives any lease, and a request id outlives any retry.
const _: () = assert!(BOOTSTRAP_SNAPSHOT_TTL_MS > REPLICA_LEASE_MS && REQUEST_ID_TTL_MS > REPLICA_LEASE_MS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
    }

    #[test]
    fn the_values_the_contract_states() {
        // docs/API.md and docs/DESIGN.md state these; changing one changes the contract.
        assert_eq!(FILE_BYTES_MAX, 100 * 1024 * 1024, "files > 100 MiB → 413");
        assert_eq!((CHANGES_PAGE_ENTRIES_DEFAULT, CHANGES_PAGE_ENTRIES_MAX), (256, 2048));
        assert_eq!(CHANGES_WAIT_MS_MAX, 30_000, "long-polls up to 30 s");
        assert_eq!(REPLICA_LEASE_MS, 5 * 60 * 1000, "5-min lease");
        assert_eq!(WATCH_QUEUED_EVENTS_MAX, 256);
        assert_eq!((PATH_BYTES_MAX, PATH_COMPONENT_BYTES_MAX), (4096, 255));
        assert_eq!(REQUEST_ID_TTL_MS, 24 * 60 * 60 * 1000, "request_id kept 24 h");
        assert_eq!(APPEND_BODY_BYTES_MAX, 100 * 1024 * 1024 / 3 * 4 + 8 * 1024 * 1024);
    }
}
