//! Storage errors, classified for the caller.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),

    /// Bytes read back from disk that do not decode: a refusal to go on, never "empty".
    #[error("corrupt record in {cf} at key {key_hex}: {reason}")]
    Corrupt { cf: &'static str, key_hex: String, reason: String },

    /// An invariant of the persisted state does not hold (for example a journal gap).
    #[error("invariant violated: {0}")]
    Invariant(String),

    #[error("blob store: {0}")]
    Blob(#[from] crate::blob::BlobError),

    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    pub fn corrupt(cf: &'static str, key: &[u8], reason: impl ToString) -> Self {
        StorageError::Corrupt { cf, key_hex: hex::encode(key), reason: reason.to_string() }
    }
}
