//! The closed sets of strings the API carries, as enums.
//!
//! Each is parsed once at the edge (a request, a stored record, a server answer) and written
//! back as exactly the string the wire has always carried: `as_str()`, `Display` and serde all
//! produce it, and `FromStr` and serde accept exactly it (no trimming, no case folding: a route
//! that is lenient with its input normalizes before parsing). A value outside the set is a
//! [`ParseError`] naming it and the set.

use std::fmt;
use std::str::FromStr;

/// A string outside a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {})", expected.join(", "))]
pub struct ParseError {
    /// What was being parsed, e.g. `event_type`.
    pub what: &'static str,
    /// The string that is not in the set.
    pub value: String,
    /// The strings that are.
    pub expected: &'static [&'static str],
}

/// Defines a `Copy` enum over a closed set of strings with `ALL`, `as_str()`, `FromStr`,
/// `Display` and string serde.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $s:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire strings, in the order of [`Self::ALL`].
            pub const STRINGS: &'static [&'static str] = &[$($s),+];

            /// The wire string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, ParseError> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(ParseError { what: $what, value: s.to_string(), expected: $name::STRINGS }),
                }
            }
        }

        /// A string with exactly these values.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($name::STRINGS.iter().copied()))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum! {
    /// What a journal entry did (`event_type`; also the `event` of a watch message).
    pub enum EventType as "event_type" {
        /// A file or directory came into being (`entry_kind` says which).
        Create = "create",
        /// A file's content was replaced.
        Write = "write",
        /// A path and everything below it went away (the entry is a tombstone).
        Remove = "remove",
        /// `old_path` moved to `path`.
        Rename = "rename",
        /// Only the mode changed.
        Chmod = "chmod",
        /// Anything under `path` may have changed up to this entry: rescan.
        Invalidate = "invalidate",
    }
}

impl EventType {
    /// Whether an entry of this type can carry file content (a create or write of a file).
    pub const fn may_carry_content(self) -> bool {
        matches!(self, EventType::Create | EventType::Write)
    }
}

string_enum! {
    /// What a journal entry names (`entry_kind`): the journal's and the namespace's spelling.
    pub enum EntryKind as "entry_kind" {
        File = "file",
        Directory = "directory",
    }
}

string_enum! {
    /// What a path is, as `FileInfo.type` shows it (the files API's spelling: `dir`).
    pub enum FileType as "type" {
        File = "file",
        Dir = "dir",
        /// In the contract; Tideline stores no symlinks, so it never answers with one.
        Symlink = "symlink",
    }
}

impl From<EntryKind> for FileType {
    fn from(k: EntryKind) -> FileType {
        match k {
            EntryKind::File => FileType::File,
            EntryKind::Directory => FileType::Dir,
        }
    }
}

string_enum! {
    /// Who may write a volume (`access_mode`).
    #[derive(Default)]
    pub enum AccessMode as "access_mode" {
        /// One writing replica at a time (the default).
        #[default]
        Rwo = "RWO",
        /// Read-only: every write through the files and sync APIs is refused.
        Rox = "ROX",
        /// No restriction.
        Rwx = "RWX",
    }
}

impl AccessMode {
    /// Whether writes through the files and sync APIs are refused.
    pub const fn is_read_only(self) -> bool {
        matches!(self, AccessMode::Rox)
    }
}

string_enum! {
    /// Where a sync conflict stands (`status`).
    pub enum ConflictStatus as "status" {
        Open = "open",
        Resolved = "resolved",
        Ignored = "ignored",
    }
}

impl ConflictStatus {
    /// The statuses `PUT …/sync/conflicts/{cid}` may set.
    pub const fn is_final(self) -> bool {
        matches!(self, ConflictStatus::Resolved | ConflictStatus::Ignored)
    }
}

string_enum! {
    /// Who made a journal entry (`source`).
    pub enum Source as "source" {
        /// A sync replica, through `…/sync/replicas/{rid}/changes` (`replica_id` says which).
        Replica = "replica",
        /// The volume itself: the files API, a mount, a restore.
        Sandbox = "sandbox",
    }
}

string_enum! {
    /// The `code` of an error envelope.
    pub enum ErrorCode as "code" {
        BadRequest = "bad_request",
        Unauthorized = "unauthorized",
        Forbidden = "forbidden",
        NotFound = "not_found",
        Conflict = "conflict",
        Unavailable = "unavailable",
        InternalError = "internal_error",
    }
}

string_enum! {
    /// Why the server refused a request (`error.details.reason` of an error envelope): one
    /// value per refusal a client may need to tell apart. Clients decide on this, never on the
    /// message text. A newer server may send a reason this build does not know: clients treat
    /// an unknown reason as none.
    pub enum Reason as "reason" {
        // 404
        /// No such volume (or another team's).
        VolumeNotFound = "volume_not_found",
        /// No file (or no path) at the path.
        FileNotFound = "file_not_found",
        /// No directory at the path a directory was expected.
        DirectoryNotFound = "directory_not_found",
        /// No such snapshot of the volume.
        SnapshotNotFound = "snapshot_not_found",
        /// No such sync replica of the volume.
        ReplicaNotFound = "replica_not_found",
        /// No such sync conflict of the volume.
        ConflictNotFound = "conflict_not_found",
        /// No such API token (or one already revoked).
        TokenNotFound = "token_not_found",
        // 401
        /// The bearer token's expiry has passed: ask for a new one.
        TokenExpired = "token_expired",
        // 409
        /// The sync replica's lease lapsed: register again, then retry.
        LeaseExpired = "lease_expired",
        /// Another replica holds the write lease of an RWO volume.
        WriteLeaseHeld = "write_lease_held",
        /// The volume is read-only (ROX).
        VolumeReadOnly = "volume_read_only",
        /// A volume with this id already exists.
        VolumeAlreadyExists = "volume_already_exists",
        /// The volume still has live sync replicas (delete with `force=true`).
        VolumeHasActiveReplicas = "volume_has_active_replicas",
        /// The path is a directory where a file is expected.
        PathIsDirectory = "path_is_directory",
        /// The path (or one of its ancestors) is a file where a directory is expected.
        PathNotDirectory = "path_not_directory",
        /// Something already exists at the path.
        PathAlreadyExists = "path_already_exists",
        /// Something already exists at a move's destination.
        DestinationAlreadyExists = "destination_already_exists",
        /// The sync cursor is below what the replica already applied.
        CursorRegression = "cursor_regression",
        /// The sync cursor is past the volume's head.
        CursorAheadOfHead = "cursor_ahead_of_head",
        /// The cursor is below the retained journal: re-bootstrap (`details` carries
        /// `retained_after_seq` and `head_seq`).
        ReseedRequired = "reseed_required",
        /// The sync request id was used before with a different payload.
        RequestIdReused = "request_id_reused",
        /// A snapshot with this id already exists.
        SnapshotAlreadyExists = "snapshot_already_exists",
        /// The snapshot is already sealed with another manifest.
        SnapshotSealed = "snapshot_sealed",
        /// The bootstrap snapshot holds paths the replica's file system cannot hold.
        NamespaceIncompatible = "namespace_incompatible",
        // 503
        /// The content is being garbage-collected: retry the write.
        ContentBeingCollected = "content_being_collected",
    }
}

string_enum! {
    /// What a watch client asks for (`action` of a client message on `files/watch`).
    pub enum WatchAction as "action" {
        Subscribe = "subscribe",
        Unsubscribe = "unsubscribe",
    }
}

string_enum! {
    /// What a watch server message is (its `type`).
    pub enum WatchMessageType as "type" {
        Subscribed = "subscribed",
        /// A matching journal entry (`event` is its [`EventType`]).
        Event = "event",
        Unsubscribed = "unsubscribed",
        Error = "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value round-trips through its string, serde writes exactly that string, and the
    /// strings are today's wire strings.
    fn round_trips<T>(all: &[T], strings: &[&str])
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr<Err = ParseError> + serde::Serialize,
        T: serde::de::DeserializeOwned,
    {
        assert_eq!(all.len(), strings.len());
        for (v, s) in all.iter().zip(strings) {
            assert_eq!(v.to_string(), *s);
            assert_eq!(s.parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<T>(&format!("\"{s}\"")).unwrap(), *v);
        }
    }

    #[test]
    fn the_strings_are_the_wire_strings() {
        round_trips(EventType::ALL, &["create", "write", "remove", "rename", "chmod", "invalidate"]);
        round_trips(EntryKind::ALL, &["file", "directory"]);
        round_trips(FileType::ALL, &["file", "dir", "symlink"]);
        round_trips(AccessMode::ALL, &["RWO", "ROX", "RWX"]);
        round_trips(ConflictStatus::ALL, &["open", "resolved", "ignored"]);
        round_trips(Source::ALL, &["replica", "sandbox"]);
        round_trips(WatchAction::ALL, &["subscribe", "unsubscribe"]);
        round_trips(WatchMessageType::ALL, &["subscribed", "event", "unsubscribed", "error"]);
        round_trips(
            ErrorCode::ALL,
            &["bad_request", "unauthorized", "forbidden", "not_found", "conflict", "unavailable", "internal_error"],
        );
        assert_eq!(EventType::Rename.as_str(), "rename");
        assert_eq!(AccessMode::default(), AccessMode::Rwo);
    }

    #[test]
    fn every_reason_round_trips() {
        assert_eq!(Reason::ALL.len(), Reason::STRINGS.len());
        round_trips(Reason::ALL, Reason::STRINGS);
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(*r));
            let s = r.as_str();
            assert!(!s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{s} is not snake_case");
        }
        let distinct: std::collections::BTreeSet<_> = Reason::STRINGS.iter().collect();
        assert_eq!(distinct.len(), Reason::ALL.len(), "two reasons share a string");
        // The bytes clients already match on.
        assert_eq!(Reason::ReseedRequired.as_str(), "reseed_required");
        assert_eq!(Reason::NamespaceIncompatible.as_str(), "namespace_incompatible");
        let e = "lease expired".parse::<Reason>().unwrap_err();
        assert_eq!(e.what, "reason");
        assert_eq!(e.value, "lease expired");
    }

    #[test]
    fn parsing_is_exact_and_names_the_bad_value() {
        for bad in ["rox", " ROX", "ROX ", "", "RW"] {
            let e = bad.parse::<AccessMode>().unwrap_err();
            assert_eq!(e.value, bad);
            assert_eq!(e.to_string(), format!("unknown access_mode {bad:?} (expected one of: RWO, ROX, RWX)"));
        }
        let e = "mkdir".parse::<EventType>().unwrap_err();
        assert_eq!(e.what, "event_type");
        assert!(e.to_string().contains("\"mkdir\""), "{e}");
        assert!("dir".parse::<EntryKind>().is_err(), "the journal spells it `directory`");
        assert!("directory".parse::<FileType>().is_err(), "FileInfo spells it `dir`");
        let e = serde_json::from_str::<ConflictStatus>("\"closed\"").unwrap_err();
        assert!(e.to_string().contains("unknown status \"closed\""), "{e}");
        assert!(serde_json::from_str::<Source>("1").is_err());
    }

    #[test]
    fn predicates() {
        assert!(AccessMode::Rox.is_read_only() && !AccessMode::Rwo.is_read_only() && !AccessMode::Rwx.is_read_only());
        assert!(ConflictStatus::Resolved.is_final() && ConflictStatus::Ignored.is_final());
        assert!(!ConflictStatus::Open.is_final());
        let carrying: Vec<_> = EventType::ALL.iter().filter(|e| e.may_carry_content()).collect();
        assert_eq!(carrying, [&EventType::Create, &EventType::Write]);
        assert_eq!(FileType::from(EntryKind::Directory), FileType::Dir);
        assert_eq!(FileType::from(EntryKind::File), FileType::File);
    }
}
