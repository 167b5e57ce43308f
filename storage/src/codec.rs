//! Versioned encoding of every persisted value: one format-version byte, then prost bytes.
//!
//! A value whose version this build does not know, or whose bytes do not decode, is a
//! [`StorageError::Corrupt`] naming the column family and key.

use prost::Message;

use crate::error::StorageError;

/// The format version written by this build.
pub const FORMAT_V1: u8 = 1;

pub fn encode<M: Message>(msg: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + msg.encoded_len());
    out.push(FORMAT_V1);
    msg.encode(&mut out).expect("Vec<u8> grows as needed");
    out
}

pub fn decode<M: Message + Default>(cf: &'static str, key: &[u8], bytes: &[u8]) -> Result<M, StorageError> {
    match bytes.split_first() {
        None => Err(StorageError::corrupt(cf, key, "empty value")),
        Some((&FORMAT_V1, body)) => M::decode(body).map_err(|e| StorageError::corrupt(cf, key, e)),
        Some((v, _)) => Err(StorageError::corrupt(cf, key, format!("unknown format version {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::TokenRecord;

    #[test]
    fn round_trip_and_corruption_is_typed() {
        let t = TokenRecord { id: "t1".into(), team_id: "team".into(), ..Default::default() };
        let bytes = encode(&t);
        assert_eq!(decode::<TokenRecord>("tokens", b"k", &bytes).unwrap(), t);

        let err = decode::<TokenRecord>("tokens", b"k", &[]).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { cf: "tokens", .. }), "{err}");
        let err = decode::<TokenRecord>("tokens", b"k", &[9, 1, 2]).unwrap_err();
        assert!(err.to_string().contains("unknown format version 9"), "{err}");
        let err = decode::<TokenRecord>("tokens", b"k", &[1, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    }
}
