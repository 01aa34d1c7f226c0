//! The MessagePack codec of arguments and results (serde + rmp-serde):
//! structs as maps, so serde attributes such as `skip_serializing_if`
//! round-trip.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::Serialize;

thread_local! {
    /// A buffer for the next [`encode`] on this thread (a pool worker's
    /// last result buffer; empty anywhere else). A fork child never
    /// touches it: it encodes with [`encode_small`], and the first use of a
    /// thread-local with a destructor costs a lazy symbol lookup in libc
    /// and dozens of page faults, which there would come on every call.
    static NEXT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Gives `buf` to the next [`encode`] on this thread, to write into
/// instead of a fresh buffer.
pub(crate) fn encode_next_into(mut buf: Vec<u8>) {
    buf.clear();
    NEXT.with(|next| next.set(buf));
}

/// Encodes a value as MessagePack (structs as maps, so serde attributes such
/// as `skip_serializing_if` round-trip).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    encode_into(crate::wire::bigbuf::Writer(NEXT.with(Cell::take)), value).map(|out| out.0)
}

/// Encodes `value` at the end of `out`.
fn encode_into<W: std::io::Write, T: Serialize>(mut out: W, value: &T) -> Result<W, String> {
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| format!("could not encode the result: {e}"))?;
    Ok(out)
}

/// Room for a small encoded value on the stack (see [`Encoded`]).
const INLINE: usize = 256;

/// An encoded value, kept on the stack while it is small: a fork child
/// that encodes a small result then allocates nothing, and every
/// allocation there costs copy-on-write faults on malloc's state and heap.
#[expect(
    clippy::large_enum_variant,
    reason = "the inline variant is the point: a stack buffer, no allocation"
)]
pub(crate) enum Encoded {
    /// The first `.1` bytes of `.0`.
    Inline([u8; INLINE], usize),
    /// Grown past [`INLINE`] (or text, such as a panic message).
    Heap(crate::wire::bigbuf::Writer),
}

impl Encoded {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Encoded::Inline(buf, len) => &buf[..*len],
            Encoded::Heap(w) => &w.0,
        }
    }
}

impl From<String> for Encoded {
    fn from(text: String) -> Self {
        Encoded::Heap(crate::wire::bigbuf::Writer(text.into_bytes()))
    }
}

impl std::io::Write for Encoded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoded::Inline(buf, len) if *len + data.len() <= INLINE => {
                buf[*len..*len + data.len()].copy_from_slice(data);
                *len += data.len();
                Ok(data.len())
            }
            Encoded::Inline(buf, len) => {
                let mut heap = crate::wire::bigbuf::Writer::default();
                heap.write_all(&buf[..*len])?;
                heap.write_all(data)?;
                *self = Encoded::Heap(heap);
                Ok(data.len())
            }
            Encoded::Heap(w) => w.write(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`encode`], into an [`Encoded`]: on the stack if it fits.
pub(crate) fn encode_small<T: Serialize>(value: &T) -> Result<Encoded, String> {
    encode_into(Encoded::Inline([0; INLINE], 0), value)
}

/// Decodes a value written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(body).map_err(|e| {
        format!(
            "could not decode the result as `{}`: {e}",
            std::any::type_name::<T>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_encoding_spills_whole_past_the_inline_size() {
        for len in INLINE - 8..INLINE + 8 {
            let value = crate::Bytes(vec![7; len]);
            let small = encode_small(&value).unwrap();
            assert_eq!(small.as_slice(), &encode(&value).unwrap()[..], "{len}");
        }
    }

    #[test]
    fn decode_type_mismatch_is_an_error() {
        let body = encode(&"text").unwrap();
        let e = decode::<u64>(&body).unwrap_err();
        assert!(e.contains("`u64`"), "{e}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// On the stack or spilled to the heap, a fork child's encoding
            /// is byte for byte what `encode` writes.
            #[test]
            fn encode_small_writes_what_encode_writes(
                value in proptest::collection::vec((any::<u32>(), ".{0,20}"), 0..50),
            ) {
                let small = encode_small(&value).unwrap();
                prop_assert_eq!(small.as_slice(), &encode(&value).unwrap()[..]);
            }
        }
    }
}
