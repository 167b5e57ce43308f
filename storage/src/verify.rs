//! The start-up check of the stored state: every record decodes and every volume's journal is
//! gapless from its floor to its head. A corrupt store is refused, never served as empty.
//!
//! Whole-store by nature; it streams each column family rather than collecting it.

use crate::codec;
use crate::db::Cf;
use crate::error::StorageError;
use crate::keys;
use crate::records::{JournalEntry, NodeRecord, TokenRecord, VolumeRecord};
use crate::state_machine::StateMachine;

/// What [`StateMachine::verify`] read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub volumes: u64,
    pub journal_entries: u64,
    pub nodes: u64,
    pub tokens: u64,
}

impl StateMachine {
    /// Decodes every record and checks that each volume's journal is gapless from its floor to
    /// its head. Run at start-up: a corrupt store is refused, never served as empty.
    pub fn verify(&self) -> Result<VerifyReport, StorageError> {
        let db = self.db();
        let mut report = VerifyReport::default();
        self.applied()?;
        for row in db.iter::<TokenRecord>(Cf::Tokens, b"") {
            row?;
            report.tokens += 1;
        }
        // Every volume record decodes before any journal is read.
        for row in db.iter::<VolumeRecord>(Cf::Volumes, b"") {
            row?;
        }
        for row in db.iter::<VolumeRecord>(Cf::Volumes, b"") {
            let (_, vol) = row?;
            report.volumes += 1;
            let prefix = keys::volume_prefix(&vol.id);
            let mut expect = vol.floor_seq + 1;
            for item in db.raw().prefix_iterator_cf(db.cf(Cf::Journal), &prefix) {
                let (k, v) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let seq = keys::journal_seq(&vol.id, &k)
                    .ok_or_else(|| StorageError::corrupt("journal", &k, "malformed journal key"))?;
                let entry: JournalEntry = codec::decode("journal", &k, &v)?;
                if seq != expect || entry.seq != seq {
                    return Err(StorageError::Invariant(format!(
                        "volume {} journal has seq {seq} (entry says {}) where {expect} was expected",
                        vol.id, entry.seq
                    )));
                }
                expect += 1;
                report.journal_entries += 1;
            }
            if expect != vol.head_seq + 1 {
                return Err(StorageError::Invariant(format!(
                    "volume {} journal ends at {} but head_seq is {}",
                    vol.id,
                    expect - 1,
                    vol.head_seq
                )));
            }
            for row in db.iter::<NodeRecord>(Cf::Namespace, &prefix) {
                row?;
                report.nodes += 1;
            }
        }
        Ok(report)
    }
}
