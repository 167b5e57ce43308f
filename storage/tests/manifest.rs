//! Snapshot manifests and the bootstrap archive through their public surface: the byte format
//! refuses every corruption, `collect` sees exactly the state of its RocksDB snapshot, entries
//! come out in archive order, the `tar.gz` reads back with the ordinary `tar` + `flate2` crates,
//! and named objects go to and from the blob store.

use std::collections::HashMap;
use std::io::{self, Read};

use bytes::Bytes;
use flate2::read::GzDecoder;
use tideline_storage::archive::write_tar_gz;
use tideline_storage::manifest::{self, Manifest, ManifestEntry, ManifestError, ManifestHeader, MANIFEST_VERSION};
use tideline_storage::*;

fn file(path: &str, data: &[u8], mode: u32) -> ManifestEntry {
    ManifestEntry {
        path: path.into(),
        kind: KIND_FILE.into(),
        mode,
        size: data.len() as u64,
        content_ref: Some(ContentRef::of(data).to_string()),
        mtime_ms: 1_700_000_000_123,
    }
}

fn dir(path: &str, mode: u32) -> ManifestEntry {
    ManifestEntry {
        path: path.into(),
        kind: KIND_DIR.into(),
        mode,
        size: 0,
        content_ref: None,
        mtime_ms: 1_600_000_000_999,
    }
}

/// A small tree in manifest order, with its file contents by path.
fn sample() -> (Vec<ManifestEntry>, HashMap<String, Vec<u8>>) {
    let long_dir = format!("/{}", "d".repeat(120));
    let long_file = format!("{long_dir}/{}.txt", "f".repeat(150));
    let contents: HashMap<String, Vec<u8>> = [
        ("/a.txt", b"alpha".to_vec()),
        ("/a/b", b"bravo, a little longer".to_vec()),
        ("/a/empty", Vec::new()),
        ("/z.bin", (0..=255u8).cycle().take(70_000).collect()),
        (long_file.as_str(), b"deep".to_vec()),
    ]
    .into_iter()
    .map(|(p, d)| (p.to_string(), d))
    .collect();
    let mut entries = vec![
        file("/a.txt", &contents["/a.txt"], 0o644),
        dir("/a", 0o755),
        file("/a/b", &contents["/a/b"], 0o600),
        file("/a/empty", &contents["/a/empty"], 0o644),
        dir(&long_dir, 0o700),
        file(&long_file, &contents[&long_file], 0o755),
        file("/z.bin", &contents["/z.bin"], 0o640),
    ];
    entries.sort_by(manifest::archive_order);
    (entries, contents)
}

fn header() -> ManifestHeader {
    ManifestHeader::new("vol-1", "snap-1", 42, 1_700_000_000_000)
}

fn assert_corrupt(result: Result<Manifest, ManifestError>, what: &str) {
    match result {
        Err(ManifestError::Corrupt { .. }) => {}
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

#[test]
fn encode_decode_round_trip() {
    tracing::info!("a manifest with files, directories and long names decodes to what was encoded");
    let (entries, _) = sample();
    let (bytes, trailer) = manifest::encode(&header(), &entries);
    assert!(bytes.starts_with(b"TLMANIF\n"));
    assert_eq!(trailer.entries, 7);
    assert_eq!(trailer.files, 5);
    assert_eq!(trailer.directories, 2);
    assert_eq!(trailer.total_size_bytes, 5 + 22 + 70_000 + 4);

    let m = manifest::decode(&bytes).unwrap();
    assert_eq!(m.header, header());
    assert_eq!(m.header.version, MANIFEST_VERSION);
    assert_eq!(m.entries, entries);
    assert_eq!(m.trailer, trailer);

    tracing::info!("an empty namespace is a valid manifest too");
    let (bytes, trailer) = manifest::encode(&header(), &[]);
    assert_eq!(trailer.entries, 0);
    assert!(manifest::decode(&bytes).unwrap().entries.is_empty());
}

#[test]
fn every_flipped_byte_is_corrupt() {
    let (entries, _) = sample();
    let (bytes, _) = manifest::encode(&header(), &entries[..3]);
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= mask;
            assert_corrupt(manifest::decode(&bad), &format!("byte {i} ^ {mask:#x}"));
        }
    }
}

#[test]
fn every_truncation_is_corrupt() {
    let (entries, _) = sample();
    let (bytes, _) = manifest::encode(&header(), &entries[..3]);
    for len in 0..bytes.len() {
        assert_corrupt(manifest::decode(&bytes[..len]), &format!("first {len} of {} bytes", bytes.len()));
    }
    tracing::info!("bytes appended after the checksum are refused too");
    let mut longer = bytes.clone();
    longer.push(0);
    assert_corrupt(manifest::decode(&longer), "one byte appended");
}

#[test]
fn unknown_version_is_named() {
    let (entries, _) = sample();
    let mut h = header();
    h.version = 2;
    let (bytes, _) = manifest::encode(&h, &entries);
    let err = manifest::decode(&bytes).unwrap_err();
    assert_eq!(err, ManifestError::UnsupportedVersion(2));
    assert!(err.to_string().contains("version 2"), "{err}");

    h.version = 0;
    let (bytes, _) = manifest::encode(&h, &entries);
    assert_eq!(manifest::decode(&bytes).unwrap_err(), ManifestError::UnsupportedVersion(0));
}

/// Builds manifest bytes by hand (valid magic and checksum) around arbitrary records.
type Record<'a> = &'a dyn Fn(&mut Vec<u8>);

fn hand_built(records: &[Record]) -> Vec<u8> {
    use sha2::Digest;
    let mut out = b"TLMANIF\n".to_vec();
    for r in records {
        r(&mut out);
    }
    let sum = sha2::Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

#[test]
fn well_checksummed_but_inconsistent_content_is_corrupt() {
    use prost::Message;
    let h = header();
    let a = dir("/a", 0o755);
    let b = file("/a/b", b"x", 0o644);
    let put_h = |o: &mut Vec<u8>| h.encode_length_delimited(o).unwrap();
    let put_a = |o: &mut Vec<u8>| a.encode_length_delimited(o).unwrap();
    let put_b = |o: &mut Vec<u8>| b.encode_length_delimited(o).unwrap();
    let trailer_of = |t: manifest::ManifestTrailer| move |o: &mut Vec<u8>| t.encode_length_delimited(o).unwrap();
    let good = manifest::ManifestTrailer::of(&[a.clone(), b.clone()]);

    tracing::info!("the hand-built form is the encoder's form");
    let ok = hand_built(&[&put_h, &put_a, &put_b, &trailer_of(good)]);
    assert_eq!(ok, manifest::encode(&h, &[a.clone(), b.clone()]).0);
    manifest::decode(&ok).unwrap();

    tracing::info!("counts that disagree with the entries");
    for t in [
        manifest::ManifestTrailer { entries: 3, ..good },
        manifest::ManifestTrailer { files: 2, ..good },
        manifest::ManifestTrailer { directories: 0, ..good },
        manifest::ManifestTrailer { total_size_bytes: 2, ..good },
    ] {
        assert_corrupt(manifest::decode(&hand_built(&[&put_h, &put_a, &put_b, &trailer_of(t)])), "trailer");
    }

    tracing::info!("entries out of order, a child without its parent, no trailer, no header");
    assert_corrupt(manifest::decode(&hand_built(&[&put_h, &put_b, &put_a, &trailer_of(good)])), "order");
    let only_b = manifest::ManifestTrailer::of(std::slice::from_ref(&b));
    assert_corrupt(manifest::decode(&hand_built(&[&put_h, &put_b, &trailer_of(only_b)])), "orphan");
    assert_corrupt(manifest::decode(&hand_built(&[&put_h])), "no trailer");
    assert_corrupt(manifest::decode(&hand_built(&[])), "no header");
    assert_corrupt(manifest::decode(&hand_built(&[&|o: &mut Vec<u8>| o.extend_from_slice(&[0xff; 11])])), "bad len");
}

#[test]
#[should_panic(expected = "unreadable manifest")]
fn encode_refuses_entries_it_could_not_read_back() {
    manifest::encode(&header(), &[file("/a/b", b"x", 0o644)]);
}

#[test]
fn archive_names_sort_as_bytes() {
    let a_txt = file("/a.txt", b"", 0o644);
    let a_dir = dir("/a", 0o755);
    let a_b = file("/a/b", b"", 0o644);
    assert_eq!(manifest::archive_name(&a_txt), "a.txt");
    assert_eq!(manifest::archive_name(&a_dir), "a/");
    assert_eq!(manifest::archive_name(&a_b), "a/b");

    let mut entries = vec![a_b.clone(), a_dir.clone(), a_txt.clone()];
    entries.sort_by(manifest::archive_order);
    // '.' (0x2e) sorts before '/' (0x2f): "a.txt" < "a/" < "a/b", a directory before its children.
    assert_eq!(entries, vec![a_txt, a_dir, a_b]);
    let names: Vec<String> = entries.iter().map(manifest::archive_name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

fn put_node(db: &Db, volume: &str, path: &str, node: &NodeRecord) {
    db.raw().put_cf(db.cf(Cf::Namespace), keys::node(volume, path), codec::encode(node)).unwrap();
}

fn node_file(data: &[u8], seq: u64) -> NodeRecord {
    NodeRecord {
        kind: KIND_FILE.into(),
        mode: 0o644,
        size: data.len() as u64,
        content_ref: Some(ContentRef::of(data).to_string()),
        mtime_ms: 1000 * seq as i64,
        seq,
        source: "sandbox".into(),
    }
}

fn node_dir(seq: u64) -> NodeRecord {
    NodeRecord { kind: KIND_DIR.into(), mode: 0o755, seq, source: "sandbox".into(), ..Default::default() }
}

#[test]
fn collect_sees_exactly_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(&tmp.path().join("db")).unwrap();

    tracing::info!("phase 1: a namespace of v1 (in key order /a/b comes after /a.txt and /z), and a v10 beside it");
    put_node(&db, "v1", "/a", &node_dir(1));
    put_node(&db, "v1", "/a/b", &node_file(b"b1", 2));
    put_node(&db, "v1", "/a.txt", &node_file(b"t", 3));
    put_node(&db, "v1", "/z", &node_file(b"zz", 4));
    put_node(&db, "v10", "/other", &node_file(b"o", 1));

    let snap = db.raw().snapshot();

    tracing::info!("phase 2: after the snapshot, add, change and delete rows of v1");
    put_node(&db, "v1", "/a/new", &node_file(b"new", 5));
    put_node(&db, "v1", "/a/b", &node_file(b"b2-changed", 6));
    db.raw().delete_cf(db.cf(Cf::Namespace), keys::node("v1", "/z")).unwrap();
    put_node(&db, "v1", "/late", &node_dir(7));

    tracing::info!("phase 3: collect through the snapshot sees phase 1 only, in archive order");
    let entries = manifest::collect(&db, &snap, "v1").unwrap();
    let names: Vec<String> = entries.iter().map(manifest::archive_name).collect();
    assert_eq!(names, vec!["a.txt", "a/", "a/b", "z"]);
    let b = &entries[2];
    assert_eq!(b.content_ref.as_deref(), Some(ContentRef::of(b"b1").to_string().as_str()));
    assert_eq!((b.size, b.mode, b.mtime_ms, b.kind.as_str()), (2, 0o644, 2000, KIND_FILE));
    assert_eq!(entries[1], ManifestEntry { mtime_ms: 0, ..dir("/a", 0o755) });
    let (bytes, _) = manifest::encode(&ManifestHeader::new("v1", "s", 4, 0), &entries);
    assert_eq!(manifest::decode(&bytes).unwrap().entries, entries);

    tracing::info!("phase 4: a fresh snapshot sees the later writes");
    let now = manifest::collect(&db, &db.raw().snapshot(), "v1").unwrap();
    let names: Vec<String> = now.iter().map(manifest::archive_name).collect();
    assert_eq!(names, vec!["a.txt", "a/", "a/b", "a/new", "late/"]);
    assert_eq!(now[2].size, 10);

    tracing::info!("phase 5: an unknown volume is empty; other volumes never leak in");
    assert!(manifest::collect(&db, &snap, "nope").unwrap().is_empty());
    let v10 = manifest::collect(&db, &snap, "v10").unwrap();
    assert_eq!(v10.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), vec!["/other"]);
}

#[test]
fn collect_refuses_a_broken_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(&tmp.path().join("db")).unwrap();

    tracing::info!("a row that does not decode is Corrupt, not skipped");
    db.raw().put_cf(db.cf(Cf::Namespace), keys::node("v1", "/bad"), [9u8, 1, 2]).unwrap();
    let err = manifest::collect(&db, &db.raw().snapshot(), "v1").unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { cf: "namespace", .. }), "{err}");

    tracing::info!("a file without a content_ref, and a child whose parent is missing");
    let tmp2 = tempfile::tempdir().unwrap();
    let db2 = Db::open(&tmp2.path().join("db")).unwrap();
    put_node(&db2, "v1", "/f", &NodeRecord { content_ref: None, ..node_file(b"x", 1) });
    let err = manifest::collect(&db2, &db2.raw().snapshot(), "v1").unwrap_err();
    assert!(err.to_string().contains("content_ref"), "{err}");
    put_node(&db2, "v2", "/missing/child", &node_file(b"x", 1));
    let err = manifest::collect(&db2, &db2.raw().snapshot(), "v2").unwrap_err();
    assert!(matches!(err, StorageError::Invariant(_)), "{err}");
}

fn opener(contents: &HashMap<String, Vec<u8>>) -> impl FnMut(&ManifestEntry) -> io::Result<Box<dyn Read>> + '_ {
    move |e: &ManifestEntry| {
        let data = contents.get(&e.path).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, e.path.clone()))?;
        Ok(Box::new(io::Cursor::new(data.clone())) as Box<dyn Read>)
    }
}

#[test]
fn tar_gz_reads_back_with_tar_and_flate2() {
    let (entries, contents) = sample();
    let (bytes, _) = manifest::encode(&header(), &entries);
    let m = manifest::decode(&bytes).unwrap();

    tracing::info!("write the archive from the manifest and the contents");
    let mut open = opener(&contents);
    let out = write_tar_gz(&m, &mut open, Vec::new()).unwrap();

    tracing::info!("read it back: names, order, kinds, modes, times, owners, bodies");
    let mut archive = tar::Archive::new(GzDecoder::new(&out[..]));
    let mut seen = Vec::new();
    for item in archive.entries().unwrap() {
        let mut entry = item.unwrap();
        let name = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
        let h = entry.header().clone();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        seen.push((name, h, body));
    }
    assert_eq!(seen.len(), entries.len());
    for ((name, h, body), e) in seen.iter().zip(&entries) {
        assert_eq!(name, &manifest::archive_name(e));
        assert!(!name.starts_with('/'), "{name}");
        assert_eq!(h.mode().unwrap(), e.mode, "{name}");
        assert_eq!(h.mtime().unwrap(), (e.mtime_ms / 1000) as u64, "{name}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{name}");
        assert_eq!(h.size().unwrap(), e.size, "{name}");
        if e.is_dir() {
            assert!(name.ends_with('/'), "{name}");
            assert_eq!(h.entry_type(), tar::EntryType::Directory);
            assert!(body.is_empty());
        } else {
            assert!(!name.ends_with('/'), "{name}");
            assert_eq!(h.entry_type(), tar::EntryType::Regular);
            assert_eq!(body, &contents[&e.path], "{name}");
        }
    }
    assert!(seen.iter().any(|(n, _, _)| n.len() > 100), "a long (GNU) name was exercised");

    tracing::info!("the gzip stream is finished: decoding reads to its end with nothing left over");
    let mut gz = GzDecoder::new(&out[..]);
    let mut raw = Vec::new();
    gz.read_to_end(&mut raw).unwrap();
    assert_eq!(raw.len() % 512, 0);

    tracing::info!("unpacking into a directory recreates the tree");
    let dest = tempfile::tempdir().unwrap();
    tar::Archive::new(GzDecoder::new(&out[..])).unpack(dest.path()).unwrap();
    assert_eq!(std::fs::read(dest.path().join("a/b")).unwrap(), b"bravo, a little longer");
    assert!(dest.path().join("a").is_dir());
}

#[test]
fn a_body_that_differs_from_its_entry_is_an_error() {
    let (entries, mut contents) = sample();
    let m = Manifest { header: header(), trailer: manifest::ManifestTrailer::of(&entries), entries };

    tracing::info!("short body");
    let good = contents["/a/b"].clone();
    contents.insert("/a/b".into(), good[..good.len() - 1].to_vec());
    let err = write_tar_gz(&m, &mut opener(&contents), Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("/a/b"), "{err}");

    tracing::info!("long body");
    let mut long = good.clone();
    long.push(b'!');
    contents.insert("/a/b".into(), long);
    let err = write_tar_gz(&m, &mut opener(&contents), Vec::new()).unwrap_err();
    assert!(err.to_string().contains("longer"), "{err}");

    tracing::info!("right size, wrong bytes");
    let mut swapped = good.clone();
    swapped[0] ^= 1;
    contents.insert("/a/b".into(), swapped);
    let err = write_tar_gz(&m, &mut opener(&contents), Vec::new()).unwrap_err();
    assert!(err.to_string().contains("hashes to"), "{err}");

    tracing::info!("an error from open is passed through");
    contents.remove("/a/b");
    let err = write_tar_gz(&m, &mut opener(&contents), Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    tracing::info!("with the right body again it succeeds");
    contents.insert("/a/b".into(), good);
    write_tar_gz(&m, &mut opener(&contents), Vec::new()).unwrap();
}

#[tokio::test]
async fn named_objects_in_a_local_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::local(tmp.path()).unwrap();
    let loc = manifest::location("vol-1", "snap-1");
    assert_eq!(loc.as_ref(), "snapshots/vol-1/snap-1/manifest");

    tracing::info!("absent, then put, then read back; a put again replaces");
    assert_eq!(store.get_object(&loc).await.unwrap(), None);
    let (entries, _) = sample();
    let (bytes, _) = manifest::encode(&header(), &entries);
    store.put_object(&loc, Bytes::from(bytes.clone())).await.unwrap();
    assert!(tmp.path().join("snapshots/vol-1/snap-1/manifest").is_file());
    let got = store.get_object(&loc).await.unwrap().unwrap();
    assert_eq!(manifest::decode(&got).unwrap().entries, entries);
    store.put_object(&loc, Bytes::from(bytes.clone())).await.unwrap();
    store.put_object(&loc, Bytes::from_static(b"replaced")).await.unwrap();
    assert_eq!(store.get_object(&loc).await.unwrap().as_deref(), Some(&b"replaced"[..]));

    tracing::info!("delete, and deleting again is fine");
    store.delete_object(&loc).await.unwrap();
    assert_eq!(store.get_object(&loc).await.unwrap(), None);
    store.delete_object(&loc).await.unwrap();
    store.delete_object(&manifest::location("never", "was")).await.unwrap();
}
