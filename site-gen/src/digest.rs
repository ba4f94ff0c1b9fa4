//! Content hashes: of output files (the manifest) and of the inputs of a
//! page (its key). SHA-256 cut to 128 bits: stable across Rust releases and
//! machines (unlike `DefaultHasher`), and fast where the CPU has SHA
//! instructions.

use std::fmt;

use gix::ObjectId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Digest([u8; 16]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        let mut k = Key::new("bytes");
        k.bytes(bytes);
        k.finish()
    }

    fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 15) as usize] as char);
        }
        s
    }

    fn from_hex(s: &str) -> Option<Digest> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Hex for people (JSON), 16 bytes for the binary manifest.
impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.serialize_str(&self.hex()) } else { self.0.serialize(s) }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        if !d.is_human_readable() {
            return <[u8; 16]>::deserialize(d).map(Digest);
        }
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&s).ok_or_else(|| serde::de::Error::custom("not a 32-digit hex digest"))
    }
}

/// Builds a digest from typed parts. Every part is length-prefixed, so
/// `("ab", "c")` and `("a", "bc")` never collide.
pub struct Key(Sha256);

impl Key {
    /// `domain` keeps keys of different kinds of pages apart.
    pub fn new(domain: &str) -> Key {
        let mut k = Key(Sha256::new());
        k.str(domain);
        k
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Key {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Key {
        self.bytes(s.as_bytes())
    }

    pub fn u64(&mut self, n: u64) -> &mut Key {
        self.0.update(n.to_le_bytes());
        self
    }

    pub fn oid(&mut self, id: &ObjectId) -> &mut Key {
        self.bytes(id.as_bytes())
    }

    pub fn digest(&mut self, d: Digest) -> &mut Key {
        self.0.update(d.0);
        self
    }

    pub fn finish(self) -> Digest {
        let full = self.0.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        Digest(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_do_not_run_together() {
        let mut a = Key::new("t");
        a.str("ab").str("c");
        let mut b = Key::new("t");
        b.str("a").str("bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn round_trips_as_bytes_and_as_hex() {
        let d = Digest::of(b"page");
        let bin = postcard::to_stdvec(&d).unwrap();
        assert_eq!(bin.len(), 16);
        assert_eq!(postcard::from_bytes::<Digest>(&bin).unwrap(), d);
        let d = Digest::of(b"page");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json.len(), 34);
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"zz\"").is_err());
    }
}
