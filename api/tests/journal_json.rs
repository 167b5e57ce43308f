//! The JSON `changes` page written from borrowed entries is byte for byte the page the envelope
//! of `json!` + `SyncJournalEntry` serializes: every event type, optional fields present and
//! absent, escapes, metadata as the old path re-serializes it, seqs and times at their edges —
//! read back through RocksDB and the borrowed decoder — and a proptest over arbitrary entries.
//!
//! The old serializer is kept here as it was before the wire types moved to `tideline-types`
//! (its `event_type`, `source` and `entry_kind` were strings, so it serializes any stored
//! string, which these tests feed it). Wherever those strings are in the wire's closed sets,
//! the typed `SyncJournalEntry` (`ToWire`) must serialize to the same bytes as well.

use proptest::prelude::*;
use serde::Serialize;
use serde_json::json;
use tideline_api::journal_json::JsonPage;
use tideline_api::wire::ToWire;
use tideline_storage::journal_page::read_page;
use tideline_storage::{codec, keys, Cf, ContentRef, Db, JournalEntry, JournalEntryRef};

/// `tideline_api::wire::SyncJournalEntry` as it was before the move, strings and all.
#[derive(Serialize)]
struct OldSyncJournalEntry {
    seq: u64,
    volume_id: String,
    team_id: String,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_id: Option<String>,
    event_type: String,
    path: String,
    normalized_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalized_old_path: Option<String>,
    tombstone: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
    created_at: String,
}

impl From<&JournalEntry> for OldSyncJournalEntry {
    fn from(e: &JournalEntry) -> Self {
        OldSyncJournalEntry {
            seq: e.seq,
            volume_id: e.volume_id.clone(),
            team_id: e.team_id.clone(),
            source: e.source.clone(),
            replica_id: e.replica_id.clone(),
            event_type: e.event_type.clone(),
            path: e.path.clone(),
            normalized_path: e.normalized_path.clone(),
            old_path: e.old_path.clone(),
            normalized_old_path: e.normalized_old_path.clone(),
            tombstone: e.tombstone,
            entry_kind: e.entry_kind.clone(),
            mode: e.mode,
            content_ref: e.content_ref.clone(),
            content_sha256: e.content_ref.as_deref().and_then(ContentRef::parse).map(|r| r.hex()),
            size_bytes: e.size_bytes,
            metadata: e.metadata_json.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            created_at: tideline_api::wire::rfc3339(e.created_at_ms),
        }
    }
}

fn envelope<T: Serialize>(changes: Vec<T>, head_seq: u64, floor_seq: u64) -> Vec<u8> {
    let data = json!({ "head_seq": head_seq, "retained_after_seq": floor_seq, "changes": changes });
    serde_json::to_vec(&json!({ "success": true, "data": data })).unwrap()
}

/// What the route served before: `ok(json!({…}))`, serialized by `axum::Json`. Where every
/// entry converts to the typed wire entry, that page is checked to be the same bytes too.
fn old_page(entries: &[JournalEntry], head_seq: u64, floor_seq: u64) -> Vec<u8> {
    let head = entries.last().map_or(head_seq, |e| e.seq.max(head_seq));
    let old = envelope(entries.iter().map(OldSyncJournalEntry::from).collect(), head, floor_seq);
    if let Ok(typed) = entries.iter().map(ToWire::to_wire).collect::<Result<Vec<_>, _>>() {
        assert_same(&old, &envelope(typed, head, floor_seq));
    }
    old
}

fn new_page(entries: &[JournalEntry], head_seq: u64, floor_seq: u64) -> Vec<u8> {
    let mut page = JsonPage::with_capacity(0);
    for e in entries {
        page.push(&JournalEntryRef::of(e));
    }
    let head = entries.last().map_or(head_seq, |e| e.seq.max(head_seq));
    page.finish(head, floor_seq)
}

fn assert_same(old: &[u8], new: &[u8]) {
    if old != new {
        let at = old.iter().zip(new).position(|(a, b)| a != b).unwrap_or(old.len().min(new.len()));
        let show = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())]).into_owned();
        panic!("pages differ at byte {at}:\n old …{}…\n new …{}…", show(old), show(new));
    }
}

const SHA: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn varied() -> Vec<JournalEntry> {
    let events = ["create", "write", "remove", "rename", "chmod", "invalidate", " WRITE ", ""];
    let paths = [
        "/",
        "/src/a.txt",
        "/é/ü/日本語/😀.md",
        "/quote\"d/back\\slash",
        "/ctl\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1b}\u{1f}\u{7f}",
        "/line\u{2028}sep\u{2029}/</script>&amp;",
        "",
    ];
    let metadata = [
        None,
        Some(r#"{"editor":"vim"}"#),
        Some(r#"{ "b" : 1, "a" : [true, null, 1.5, -0, 1e3, 12345678901234567890123] }"#),
        Some(r#"{"a":"\u00e9\/\u0000","a":"dup"}"#),
        Some(r#"{"restored_snapshot_id":"snap-1","nested":{"z":{},"y":[]}}"#),
        Some("null"),
        Some("\"just a string\""),
        Some("{not json"),
        Some("1e400"),
        Some(""),
        Some("18446744073709551615"),
        Some("-9223372036854775808"),
        Some("0.1"),
    ];
    let refs = [None, Some(SHA.to_string()), Some(SHA.to_uppercase()), Some("sha256:abc".into()), Some("x\"y".into())];
    let day = 86_400_000i64;
    let times = [
        0,
        1,
        -1,
        999,
        -1000,
        1_795_000_000_123,
        -62_135_596_800_000,  // 0001-01-01
        -62_167_219_200_001,  // the last millisecond of year -1
        253_402_300_799_999,  // 9999-12-31T23:59:59.999
        253_402_300_800_000,  // past time's range: the epoch
        -377_705_116_800_000, // -9999-01-01
        -377_705_116_800_001,
        951_782_400_000 - 1, // 2000-02-28T23:59:59.999
        951_782_400_000 + day,
        i64::MIN,
        i64::MAX,
    ];
    let seqs = [1, 2, 255, 256, 65_535, 1 << 53, (1 << 53) + 1, u64::MAX - 1, u64::MAX];
    let mut out = Vec::new();
    for i in 0..600usize {
        let pick = |n: usize, salt: usize| (i.wrapping_mul(2_654_435_761) >> (salt * 3)).wrapping_add(i) % n;
        let path = paths[pick(paths.len(), 1)].to_string();
        let old = (i % 3 == 0).then(|| paths[pick(paths.len(), 2)].to_string());
        out.push(JournalEntry {
            seq: if i < seqs.len() { seqs[i] } else { i as u64 * 7919 },
            volume_id: format!("vol-{i}"),
            team_id: if i % 5 == 0 { "team \"ü\"".into() } else { "team-a".into() },
            source: if i % 2 == 0 { "replica".into() } else { "sandbox".into() },
            replica_id: (i % 4 != 0).then(|| format!("r{i}\t")),
            event_type: events[i % events.len()].into(),
            normalized_path: path.to_lowercase(),
            path,
            normalized_old_path: old.as_ref().filter(|_| i % 2 == 0).map(|o| o.to_lowercase()),
            old_path: old,
            tombstone: i % 7 == 0,
            entry_kind: match i % 3 {
                0 => None,
                1 => Some("file".into()),
                _ => Some("directory".into()),
            },
            mode: [None, Some(0), Some(0o644), Some(0o40755), Some(u32::MAX)][i % 5],
            content_ref: refs[pick(refs.len(), 3)].clone(),
            size_bytes: [None, Some(0), Some(5), Some(u64::MAX)][i % 4],
            metadata_json: metadata[pick(metadata.len(), 4)].map(str::to_string),
            created_at_ms: times[i % times.len()],
        });
    }
    out
}

#[test]
fn varied_entries_serialize_to_the_old_bytes() {
    let entries = varied();
    let typed = entries.iter().filter(|e| e.to_wire().is_ok()).count();
    assert!(typed > 400, "most entries are in the closed sets, so the typed page is checked too: {typed}");
    for chunk in [&entries[..0], &entries[..1], &entries[..]] {
        for (head, floor) in [(0, 0), (5, 3), (u64::MAX, u64::MAX - 1)] {
            assert_same(&old_page(chunk, head, floor), &new_page(chunk, head, floor));
        }
    }
    // Every entry on its own too, so one field's mistake names its entry.
    for e in &entries {
        let (old, new) = (old_page(std::slice::from_ref(e), 1, 0), new_page(std::slice::from_ref(e), 1, 0));
        assert!(
            old == new,
            "entry {e:?}:\n old {}\n new {}",
            String::from_utf8_lossy(&old),
            String::from_utf8_lossy(&new)
        );
    }
}

#[test]
fn a_page_read_through_rocksdb_serializes_to_the_old_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut entries = varied();
    for (i, e) in entries.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
        db.raw().put_cf(db.cf(Cf::Journal), keys::journal("vol", e.seq), codec::encode(e)).unwrap();
    }
    for (after, limit) in [(0, 256), (0, 2048), (100, 7), (599, 10), (600, 10)] {
        let mut page = JsonPage::with_capacity(0);
        let stats = read_page(&db, "vol", after, limit, |e, _| {
            page.push(e);
            true
        })
        .unwrap();
        let want = &entries[(after as usize).min(entries.len())..][..stats.entries];
        assert_eq!(stats.entries, limit.min(600 - after as usize));
        let head = stats.last_seq.map_or(600, |l| l.max(600));
        assert_same(&old_page(want, 600, 0), &page.finish(head, 0));
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z/\"\\\\\\x00-\\x1f\u{7f}-\u{a0}é😀]{0,24}"]
}

fn metadata() -> impl Strategy<Value = Option<String>> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        text().prop_map(|s| json!(s)),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![Just(None), value.prop_map(|v| Some(v.to_string())), text().prop_map(Some)]
}

fn entry() -> impl Strategy<Value = JournalEntry> {
    (
        (any::<u64>(), text(), text(), text(), proptest::option::of(text()), text(), text(), text()),
        (proptest::option::of(text()), proptest::option::of(text()), any::<bool>(), proptest::option::of(text())),
        (any::<Option<u32>>(), proptest::option::of(prop_oneof![text(), Just(SHA.to_string())])),
        (any::<Option<u64>>(), metadata(), prop_oneof![any::<i64>(), -400_000_000_000_000i64..400_000_000_000_000]),
    )
        .prop_map(|(a, b, c, d)| JournalEntry {
            seq: a.0,
            volume_id: a.1,
            team_id: a.2,
            source: a.3,
            replica_id: a.4,
            event_type: a.5,
            path: a.6,
            normalized_path: a.7,
            old_path: b.0,
            normalized_old_path: b.1,
            tombstone: b.2,
            entry_kind: b.3,
            mode: c.0,
            content_ref: c.1,
            size_bytes: d.0,
            metadata_json: d.1,
            created_at_ms: d.2,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_entries_serialize_to_the_old_bytes(
        entries in proptest::collection::vec(entry(), 0..4),
        head: u64,
        floor: u64,
    ) {
        let old = old_page(&entries, head, floor);
        prop_assert_eq!(String::from_utf8(old).unwrap(), String::from_utf8(new_page(&entries, head, floor)).unwrap());
        // And through the stored bytes and the borrowed decoder.
        for e in &entries {
            let stored = codec::encode(e);
            let borrowed = JournalEntryRef::decode(&stored[1..]).map(|b| b.to_owned_entry());
            prop_assert_eq!(borrowed.as_ref(), Some(e));
        }
    }
}
