//! openraft's storage conformance suite against our RocksDB log store and state machine.

use openraft::testing::{StoreBuilder, Suite};
use tideline_raft::{LogStore, StateMachineStore, TypeConfig};
use tideline_storage::Db;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), openraft::StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("db")).expect("open db");
        let log = LogStore::new(db.clone());
        let sm = StateMachineStore::open(db, &dir.path().join("snapshots")).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("conformance suite");
}
