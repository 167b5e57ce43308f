//! The compact framing of a `sync/changes` page, chosen by `Accept`: length-delimited protobuf,
//! each entry the journal's stored prost bytes as they are.
//!
//! ```text
//!   varint len ‖ JournalPageHeader { head_seq = 1, retained_after_seq = 2, entries = 3 }
//!   varint len ‖ JournalEntry (tags 1–17 of tideline_storage::JournalEntry)   × entries
//! ```
//!
//! The header is written last into room kept at the front of the buffer (its `head_seq`
//! depends on the page's last entry), so the body is one buffer and no entry is copied twice.

use axum::http::header::ACCEPT;
use axum::http::HeaderMap;
use bytes::Bytes;
use prost::Message;
use tideline_storage::JournalEntry;

/// The compact format's media type (the response's `Content-Type`).
pub const MEDIA_TYPE: &str = "application/vnd.tideline.journal+protobuf";
/// Also accepted in `Accept` for the same format.
pub const MEDIA_TYPE_ALIAS: &str = "application/x-protobuf";

/// The first record of a compact page.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct JournalPageHeader {
    #[prost(uint64, tag = "1")]
    pub head_seq: u64,
    #[prost(uint64, tag = "2")]
    pub retained_after_seq: u64,
    /// How many entry records follow.
    #[prost(uint32, tag = "3")]
    pub entries: u32,
}

/// Room for the largest length-delimited header: 1 length byte + 3 keys + 10 + 10 + 5.
const HEADER_ROOM: usize = 32;

/// A compact page being written; [`ProtoPage::finish`] puts the header in front.
pub struct ProtoPage {
    buf: Vec<u8>,
    entries: u32,
}

impl ProtoPage {
    pub fn with_capacity(bytes: usize) -> ProtoPage {
        let mut buf = Vec::with_capacity(HEADER_ROOM + bytes);
        buf.resize(HEADER_ROOM, 0);
        ProtoPage { buf, entries: 0 }
    }

    /// Appends one entry's prost bytes, length-delimited.
    pub fn push(&mut self, entry: &[u8]) {
        prost::encoding::encode_varint(entry.len() as u64, &mut self.buf);
        self.buf.extend_from_slice(entry);
        self.entries += 1;
    }

    pub fn len(&self) -> usize {
        self.buf.len() - HEADER_ROOM
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn finish(mut self, head_seq: u64, retained_after_seq: u64) -> Bytes {
        let header = JournalPageHeader { head_seq, retained_after_seq, entries: self.entries };
        let mut h = Vec::with_capacity(HEADER_ROOM);
        header.encode_length_delimited(&mut h).expect("a Vec grows as needed");
        let start = HEADER_ROOM - h.len();
        self.buf[start..HEADER_ROOM].copy_from_slice(&h);
        Bytes::from(self.buf).slice(start..)
    }
}

/// Why a compact page did not read back.
#[derive(Debug, thiserror::Error)]
pub enum PageDecodeError {
    #[error("compact page: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("compact page: {0} bytes after the last entry")]
    Trailing(usize),
}

/// Reads a compact page back (clients and tests): the header, then exactly its entries.
pub fn decode_page(mut body: &[u8]) -> Result<(JournalPageHeader, Vec<JournalEntry>), PageDecodeError> {
    let header = JournalPageHeader::decode_length_delimited(&mut body)?;
    let mut entries = Vec::with_capacity((header.entries as usize).min(body.len()));
    for _ in 0..header.entries {
        entries.push(JournalEntry::decode_length_delimited(&mut body)?);
    }
    if !body.is_empty() {
        return Err(PageDecodeError::Trailing(body.len()));
    }
    Ok((header, entries))
}

/// Whether `Accept` prefers the compact format: one of its media types with a non-zero `q` at
/// least that of any JSON range the client also lists. Anything else (or no `Accept`) is JSON.
pub fn wants_compact(headers: &HeaderMap) -> bool {
    let (mut compact, mut json) = (None::<f32>, None::<f32>);
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let slot = if media.eq_ignore_ascii_case(MEDIA_TYPE) || media.eq_ignore_ascii_case(MEDIA_TYPE_ALIAS) {
                &mut compact
            } else if media.eq_ignore_ascii_case("application/json") {
                &mut json
            } else {
                continue;
            };
            *slot = Some(slot.map_or(q, |s| s.max(q)));
        }
    }
    compact.is_some_and(|c| c > 0.0 && c >= json.unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, v.parse().unwrap());
        wants_compact(&h)
    }

    #[test]
    fn accept_chooses_the_format() {
        assert!(!wants_compact(&HeaderMap::new()));
        assert!(!accept("application/json"));
        assert!(!accept("*/*"));
        assert!(accept(MEDIA_TYPE));
        assert!(accept("Application/X-Protobuf"));
        assert!(accept("application/json;q=0.5, application/vnd.tideline.journal+protobuf"));
        assert!(!accept("application/json, application/x-protobuf;q=0.9"));
        assert!(!accept("application/x-protobuf;q=0"));
    }

    #[test]
    fn pages_round_trip_with_the_header_in_front() {
        let entries: Vec<JournalEntry> = (1..=3)
            .map(|seq| JournalEntry { seq, path: format!("/f{seq}"), created_at_ms: -5, ..Default::default() })
            .collect();
        for head in [0, 3, u64::MAX] {
            let mut page = ProtoPage::with_capacity(0);
            for e in &entries {
                page.push(&e.encode_to_vec());
            }
            let body = page.finish(head, u64::MAX - 1);
            let (h, got) = decode_page(&body).unwrap();
            assert_eq!(h, JournalPageHeader { head_seq: head, retained_after_seq: u64::MAX - 1, entries: 3 });
            assert_eq!(got, entries);
            assert!(decode_page(&body[..body.len() - 1]).is_err(), "a cut page does not decode");
        }
        let empty = ProtoPage::with_capacity(0).finish(7, 0);
        assert_eq!(
            decode_page(&empty).unwrap(),
            (JournalPageHeader { head_seq: 7, retained_after_seq: 0, entries: 0 }, vec![])
        );
    }
}
