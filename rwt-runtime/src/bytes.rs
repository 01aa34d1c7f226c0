//! `Bytes`: the fast way to move bytes across a process boundary.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Bytes that cross a process boundary as one MessagePack binary: their own
/// size plus a 5-byte header, copied at memory speed.
///
/// A plain `Vec<u8>` is serialized by serde as an array of numbers: up to
/// twice its size (every byte from 128 up takes two), and encoded and
/// decoded one element at a time, several times slower. Use `Bytes` (or
/// `#[serde(with = "serde_bytes")]` on a field) for payloads of any size.
///
/// ```
/// # use rwt_runtime as rwt;
/// let payload = rwt::Bytes::from(vec![1, 2, 3]);
/// assert_eq!(payload.len(), 3);
/// let back: Vec<u8> = payload.into();
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes, as a `Vec`.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Self {
        b.0
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                let mut out = crate::wire::bigbuf::with_capacity(v.len());
                out.extend_from_slice(v);
                Ok(Bytes(out))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }

            // Also accepts what a `Vec<u8>` was encoded as.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(Bytes(v))
            }
        }

        d.deserialize_byte_buf(BytesVisitor)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_one_binary_and_round_trip() {
        let data: Vec<u8> = (0..=255).collect();
        let as_bytes = crate::wire::codec::encode(&Bytes(data.clone())).unwrap();
        let as_vec = crate::wire::codec::encode(&data).unwrap();
        assert_eq!(as_bytes.len(), 256 + 3);
        assert!(as_vec.len() > 256 + 128);
        assert_eq!(
            crate::wire::codec::decode::<Bytes>(&as_bytes).unwrap().0,
            data
        );
        assert_eq!(
            crate::wire::codec::decode::<Bytes>(&as_vec).unwrap().0,
            data
        );
    }
}
