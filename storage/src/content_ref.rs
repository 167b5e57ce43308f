//! `content_ref = sha256:<64 lowercase hex>`: the address of a file's bytes.

use std::fmt;

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ContentRef(pub [u8; 32]);

const PREFIX: &str = "sha256:";

impl ContentRef {
    pub fn of(bytes: &[u8]) -> Self {
        ContentRef(Sha256::digest(bytes).into())
    }

    /// Parses `sha256:<64 lowercase hex>`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex_part = s.strip_prefix(PREFIX)?;
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).ok()?;
        Some(ContentRef(out))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ContentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_canonical_form() {
        let r = ContentRef::of(b"hello");
        assert_eq!(ContentRef::parse(&r.to_string()), Some(r));
        assert_eq!(r.hex(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(ContentRef::parse("sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"), None);
        assert_eq!(ContentRef::parse("md5:abc"), None);
        assert_eq!(ContentRef::parse("sha256:abc"), None);
        assert_eq!(ContentRef::parse(""), None);
    }
}
