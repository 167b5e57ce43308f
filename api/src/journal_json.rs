//! The `sync/changes` page as JSON, written straight from borrowed journal entries into one
//! response buffer: no `serde_json::Value`, no wire struct, no envelope copy.
//!
//! ```text
//!   JournalEntryRef ──▶ JsonPage::push ──▶ {"data":{"changes":[{…},{…}
//!                       JsonPage::finish ──▶ ],"head_seq":H,"retained_after_seq":F},"success":true}
//! ```
//!
//! The bytes are exactly what the envelope of a `json!` page of [`crate::wire::SyncJournalEntry`]
//! serializes to: serde_json (without `preserve_order`) sorts object keys, so every object here
//! lists its keys in byte order; strings are escaped as serde_json escapes them; metadata is
//! re-serialized through `serde_json::Value` as before (it is rare and small). The test
//! `api/tests/journal_json.rs` holds the two paths to the same bytes.

use tideline_storage::JournalEntryRef;

/// A page being written; [`JsonPage::finish`] closes it into the response body.
pub struct JsonPage {
    buf: Vec<u8>,
    entries: usize,
}

const OPEN: &[u8] = b"{\"data\":{\"changes\":[";

impl JsonPage {
    pub fn with_capacity(bytes: usize) -> JsonPage {
        let mut buf = Vec::with_capacity(bytes.max(OPEN.len() + 128));
        buf.extend_from_slice(OPEN);
        JsonPage { buf, entries: 0 }
    }

    pub fn push(&mut self, e: &JournalEntryRef<'_>) {
        if self.entries > 0 {
            self.buf.push(b',');
        }
        write_entry(&mut self.buf, e);
        self.entries += 1;
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn finish(mut self, head_seq: u64, retained_after_seq: u64) -> Vec<u8> {
        self.buf.extend_from_slice(b"],\"head_seq\":");
        write_u64(&mut self.buf, head_seq);
        self.buf.extend_from_slice(b",\"retained_after_seq\":");
        write_u64(&mut self.buf, retained_after_seq);
        self.buf.extend_from_slice(b"},\"success\":true}");
        self.buf
    }
}

/// One entry as a JSON object, keys in byte order (as a `serde_json::Map` holds them).
pub fn write_entry(out: &mut Vec<u8>, e: &JournalEntryRef<'_>) {
    out.push(b'{');
    if let Some(r) = e.content_ref {
        str_field(out, "content_ref", r);
        if let Some(hex) = content_sha256(r) {
            out.extend_from_slice(b"\"content_sha256\":\"");
            out.extend_from_slice(hex.as_bytes());
            out.extend_from_slice(b"\",");
        }
    }
    out.extend_from_slice(b"\"created_at\":\"");
    write_rfc3339(out, e.created_at_ms);
    out.extend_from_slice(b"\",");
    if let Some(k) = e.entry_kind {
        str_field(out, "entry_kind", k);
    }
    str_field(out, "event_type", e.event_type);
    if let Some(m) = e.metadata_json {
        // As `SyncJournalEntry` does: text that is not JSON is left out.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(m) {
            out.extend_from_slice(b"\"metadata\":");
            serde_json::to_writer(&mut *out, &v).expect("a Value always serializes into a Vec");
            out.push(b',');
        }
    }
    if let Some(mode) = e.mode {
        u64_field(out, "mode", u64::from(mode));
    }
    if let Some(p) = e.normalized_old_path {
        str_field(out, "normalized_old_path", p);
    }
    str_field(out, "normalized_path", e.normalized_path);
    if let Some(p) = e.old_path {
        str_field(out, "old_path", p);
    }
    str_field(out, "path", e.path);
    if let Some(r) = e.replica_id {
        str_field(out, "replica_id", r);
    }
    u64_field(out, "seq", e.seq);
    if let Some(n) = e.size_bytes {
        u64_field(out, "size_bytes", n);
    }
    str_field(out, "source", e.source);
    str_field(out, "team_id", e.team_id);
    out.extend_from_slice(if e.tombstone { b"\"tombstone\":true," } else { b"\"tombstone\":false," });
    out.extend_from_slice(b"\"volume_id\":");
    write_str(out, e.volume_id);
    out.push(b'}');
}

/// `"key":"value",` (the key needs no escaping: every key is a plain ASCII name).
fn str_field(out: &mut Vec<u8>, key: &str, value: &str) {
    key_of(out, key);
    write_str(out, value);
    out.push(b',');
}

/// `"key":n,`
fn u64_field(out: &mut Vec<u8>, key: &str, value: u64) {
    key_of(out, key);
    write_u64(out, value);
    out.push(b',');
}

fn key_of(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// The hex of a canonical `sha256:<64 lowercase hex>` ref (what `ContentRef::parse(..).hex()`
/// gives back), else `None`.
fn content_sha256(r: &str) -> Option<&str> {
    let hex = r.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(hex)
}

/// Decimal digits of `n`, as serde_json writes integers.
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// serde_json's escape table: 0 = as is; `u` = `\u00XX`; else the letter after `\`.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string exactly as serde_json writes it: `"`, `\` and control characters escaped
/// (`\b \t \n \f \r`, else `\u00xx` in lowercase hex), everything else as UTF-8.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's `days_from_civil`).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count from 1970-01-01 (Hinnant's `civil_from_days`): (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The instants `time` (without `large-dates`) represents: years -9999 to 9999. Outside them,
/// `wire::rfc3339` falls back to the epoch, and so does this.
const MS_MIN: i64 = days_from_civil(-9999, 1, 1) * MS_PER_DAY;
const MS_MAX: i64 = days_from_civil(10_000, 1, 1) * MS_PER_DAY - 1;

/// `wire::rfc3339` computed arithmetically: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), a `-` before
/// years below zero.
pub fn write_rfc3339(out: &mut Vec<u8>, ms: i64) {
    let ms = if (MS_MIN..=MS_MAX).contains(&ms) { ms } else { 0 };
    let (days, in_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY) as u32);
    let (year, month, day) = civil_from_days(days);
    if year < 0 {
        out.push(b'-');
    }
    let y = year.unsigned_abs() as u32;
    let (secs, milli) = (in_day / 1000, in_day % 1000);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let d = |n: u32| b'0' + n as u8;
    out.extend_from_slice(&[
        d(y / 1000),
        d(y / 100 % 10),
        d(y / 10 % 10),
        d(y % 10),
        b'-',
        d(month / 10),
        d(month % 10),
        b'-',
        d(day / 10),
        d(day % 10),
        b'T',
        d(h / 10),
        d(h % 10),
        b':',
        d(mi / 10),
        d(mi % 10),
        b':',
        d(s / 10),
        d(s % 10),
        b'.',
        d(milli / 100),
        d(milli / 10 % 10),
        d(milli % 10),
        b'Z',
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(ms: i64) -> String {
        let mut out = Vec::new();
        write_rfc3339(&mut out, ms);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_match_the_time_crate_at_the_edges() {
        let mut cases = vec![0, 1, -1, 999, 1000, -999, -1000, -1001, 1_795_000_000_123, i64::MIN, i64::MAX];
        for edge in [MS_MIN, MS_MAX, days_from_civil(2000, 2, 29) * MS_PER_DAY, days_from_civil(0, 1, 1) * MS_PER_DAY] {
            cases.extend([edge - 1001, edge - 1000, edge - 1, edge, edge + 1, edge + 999, edge + 1000]);
        }
        for ms in cases {
            assert_eq!(rfc(ms), crate::wire::rfc3339(ms), "{ms}");
        }
        // Every day of 1600..2400 (leap rules of 100 and 400 years), at a millisecond edge.
        let mut ms = days_from_civil(1600, 1, 1) * MS_PER_DAY - 1;
        while ms < days_from_civil(2400, 1, 1) * MS_PER_DAY {
            assert_eq!(rfc(ms), crate::wire::rfc3339(ms), "{ms}");
            ms += MS_PER_DAY + 1;
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é€😀\u{2028}\u{7f}\"\\/");
        for s in [all.as_str(), "", "plain", "\"", "a\\b", "\u{0}x\u{1f}"] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn content_sha256_is_only_for_canonical_refs() {
        let h = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(content_sha256(&format!("sha256:{h}")), Some(h));
        assert_eq!(content_sha256(&format!("sha256:{}", h.to_uppercase())), None);
        assert_eq!(content_sha256("sha256:abc"), None);
        assert_eq!(content_sha256(h), None);
    }
}
