//! A large result handed over instead of copied: a body that is one
//! MessagePack binary becomes the value's own buffer, decoded exactly as
//! rmp-serde decodes it ([`decode_owned`]).

use serde::de::DeserializeOwned;

use super::codec::decode;

/// A result body that is one MessagePack binary at least this large is
/// handed to the value's `Deserialize` as its own buffer
/// ([`decode_owned`]); smaller ones are copied as usual.
pub(crate) const HAND_OVER: usize = 1 << 20;

/// Decodes a result body that the caller owns. When the whole body is one
/// binary of [`HAND_OVER`] bytes or more (the encoding of an `rwt::Bytes`,
/// a `serde_bytes::ByteBuf`, or a newtype of one), the body itself, less
/// the binary's header, is handed to the value (`Visitor::visit_byte_buf`)
/// instead of being copied into a fresh allocation: a copy into fresh
/// memory costs a page fault per 4 KiB page, which was most of a 16 MiB
/// result's cost on the caller's side. `headless`: the frame reader
/// already left the binary's header out of `body` (see
/// [`binary_start`]). Anything else decodes as [`decode`] does.
pub(crate) fn decode_owned<T: DeserializeOwned>(
    mut body: Vec<u8>,
    headless: bool,
) -> Result<T, String> {
    if !headless {
        let Some(start) = binary_start(&body, body.len()) else {
            return decode(&body);
        };
        body.drain(..start);
    }
    T::deserialize(WholeBinary(body)).map_err(|e| {
        format!(
            "could not decode the result as `{}`: {e}",
            std::any::type_name::<T>()
        )
    })
}

/// Where the data starts in a body of `total` bytes that begins with
/// `prefix`, if that body is exactly one binary (`bin 16` or `bin 32`,
/// header then data) of at least [`HAND_OVER`] bytes.
pub(crate) fn binary_start(prefix: &[u8], total: usize) -> Option<usize> {
    let (start, len) = match prefix {
        [0xc5, a, b, ..] => (3, usize::from(u16::from_be_bytes([*a, *b]))),
        [0xc6, a, b, c, d, ..] => (5, u32::from_be_bytes([*a, *b, *c, *d]) as usize),
        _ => return None,
    };
    (len >= HAND_OVER && total.checked_sub(start) == Some(len)).then_some(start)
}

/// A value that is one MessagePack binary, owned. A type that asks for
/// bytes (or anything: `deserialize_any`, a string), an option (`Some`)
/// or a newtype (transparent) is offered the buffer itself where rmp-serde
/// offers a borrowed slice; every other request goes to rmp-serde's own
/// deserializer over the same bytes (the binary's header put back in
/// front), so that the answer is always the one rmp-serde gives: a
/// sequence of numbers, an enum's unit variant named by the bytes, an
/// error for a number. Not human-readable, as rmp-serde is not.
struct WholeBinary(Vec<u8>);

/// rmp-serde's deserializer, reading a header and then the data.
type Rmp = rmp_serde::Deserializer<
    rmp_serde::decode::ReadReader<
        std::io::Chain<std::io::Cursor<[u8; 5]>, std::io::Cursor<Vec<u8>>>,
    >,
>;

impl WholeBinary {
    fn rmp(self) -> Rmp {
        use std::io::Read;
        // From a `bin 32`: the length fits (a mismatch could only make the
        // decode fail).
        let len = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        let mut head = [0xc6, 0, 0, 0, 0];
        head[1..].copy_from_slice(&len.to_be_bytes());
        rmp_serde::Deserializer::new(std::io::Cursor::new(head).chain(std::io::Cursor::new(self.0)))
    }
}

/// Deserializer methods that go to rmp-serde as they are.
macro_rules! to_rmp {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: serde::de::Visitor<'de>>(
            self,
            $($arg: $ty,)*
            v: V,
        ) -> Result<V::Value, Self::Error> {
            serde::Deserializer::$method(&mut self.rmp(), $($arg,)* v)
        }
    )*};
}

impl<'de> serde::Deserializer<'de> for WholeBinary {
    type Error = rmp_serde::decode::Error;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_byte_buf(self.0)
    }

    fn deserialize_bytes<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_byte_buf(self.0)
    }

    fn deserialize_byte_buf<V: serde::de::Visitor<'de>>(
        self,
        v: V,
    ) -> Result<V::Value, Self::Error> {
        v.visit_byte_buf(self.0)
    }

    fn deserialize_str<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_byte_buf(self.0)
    }

    fn deserialize_string<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_byte_buf(self.0)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Self::Error> {
        if name == rmp_serde::MSGPACK_EXT_STRUCT_NAME {
            return serde::Deserializer::deserialize_newtype_struct(&mut self.rmp(), name, v);
        }
        v.visit_newtype_struct(self)
    }

    to_rmp! {
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::encode;

    /// A value of bytes, for the hand-over tests: newtype-transparent as
    /// MessagePack encodes it.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Image(crate::Bytes);

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Pair {
        a: u8,
        b: u8,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    enum Either {
        A,
        B(u8),
    }

    /// A unit variant catches any name, a binary's bytes too.
    #[derive(serde::Deserialize, Debug, PartialEq)]
    enum Tag {
        A,
        #[serde(other)]
        Unknown,
    }

    /// Bytes that read as hex text from a human-readable format (the way
    /// of hash and key types), as raw bytes otherwise.
    #[derive(Debug, PartialEq)]
    struct Digest(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for Digest {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            if d.is_human_readable() {
                let text = String::deserialize(d)?;
                Ok(Digest(text.bytes().step_by(2).collect()))
            } else {
                Ok(Digest(crate::Bytes::deserialize(d)?.0))
            }
        }
    }

    fn bytes_of(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    /// From [`HAND_OVER`] bytes on, a result that is one binary becomes
    /// the value without a copy: the value's buffer is the body's; one
    /// byte under it is copied, and every size decodes equal.
    #[test]
    fn a_large_binary_is_handed_over_from_the_threshold_on() {
        for len in [HAND_OVER - 1, HAND_OVER, HAND_OVER + 1] {
            let body = encode(&crate::Bytes(bytes_of(len))).unwrap();
            let at = body.as_ptr();
            let got: crate::Bytes = decode_owned(body, false).unwrap();
            assert!(got.0 == bytes_of(len), "len {len}");
            assert_eq!(got.0.as_ptr() == at, len >= HAND_OVER, "len {len}");
        }
    }

    /// The shapes that are one binary (a newtype of bytes, `Some` of
    /// bytes) are handed over too; a body that already lost the binary's
    /// header on the way in (`headless`) is the value as it stands.
    #[test]
    fn newtypes_options_and_headless_bodies_are_handed_over() {
        let len = HAND_OVER + 3;
        let body = encode(&Image(crate::Bytes(bytes_of(len)))).unwrap();
        let at = body.as_ptr();
        let got: Image = decode_owned(body, false).unwrap();
        assert!(got.0 .0 == bytes_of(len));
        assert_eq!(got.0 .0.as_ptr(), at);

        let body = encode(&Some(crate::Bytes(bytes_of(len)))).unwrap();
        let got: Option<crate::Bytes> = decode_owned(body, false).unwrap();
        assert!(got.unwrap().0 == bytes_of(len));

        let data = bytes_of(len);
        let at = data.as_ptr();
        let got: crate::Bytes = decode_owned(data, true).unwrap();
        assert_eq!((got.0.len(), got.0.as_ptr()), (len, at));
    }

    /// A body is one binary only if the binary's length is exactly the
    /// rest of the body: a forged length, either way, or a binary followed
    /// by more, is not, and decodes (or fails) as before.
    #[test]
    fn only_an_exact_binary_is_one_binary() {
        let len = HAND_OVER + 1;
        let body = encode(&crate::Bytes(bytes_of(len))).unwrap();
        assert_eq!(body[0], 0xc6);
        assert_eq!(binary_start(&body, body.len()), Some(5));
        assert_eq!(binary_start(&body, body.len() + 1), None);
        assert_eq!(binary_start(&body, body.len() - 1), None);
        assert_eq!(binary_start(&body[..4], body.len()), None);
        let small = encode(&crate::Bytes(bytes_of(60_000))).unwrap();
        assert_eq!(small[0], 0xc5);
        assert_eq!(
            binary_start(&small, small.len()),
            None,
            "under the threshold"
        );
        assert_eq!(binary_start(&[0xc6, 0xff, 0xff, 0xff, 0xff], 5), None);
        assert_eq!(binary_start(&[], 0), None);

        let mut forged = body.clone();
        forged.truncate(body.len() - 1);
        let short = decode_owned::<crate::Bytes>(forged, false).unwrap_err();
        assert!(short.contains("could not decode"), "{short}");
        let tail: (crate::Bytes, u8) =
            decode_owned(encode(&(crate::Bytes(bytes_of(len)), 7u8)).unwrap(), false).unwrap();
        assert_eq!(tail.1, 7);
    }

    /// Whatever type the caller decodes one large binary as, the answer is
    /// the one rmp-serde gives for the same bytes: the same value, or an
    /// error in both.
    #[test]
    fn a_large_binary_decodes_as_rmp_serde_decodes_it() {
        fn same<T: DeserializeOwned + PartialEq + std::fmt::Debug>(body: &[u8]) {
            let before = decode::<T>(body);
            let now = decode_owned::<T>(body.to_vec(), false);
            assert_eq!(
                before.is_ok(),
                now.is_ok(),
                "{}: {before:?} / {now:?}",
                std::any::type_name::<T>()
            );
            if let (Ok(a), Ok(b)) = (before, now) {
                assert!(a == b, "{}", std::any::type_name::<T>());
            }
        }
        let text = encode(&crate::Bytes(vec![b'a'; HAND_OVER])).unwrap();
        let binary = encode(&crate::Bytes(vec![0xff; HAND_OVER])).unwrap();
        for body in [&text, &binary] {
            same::<String>(body);
            same::<Vec<u8>>(body);
            same::<u64>(body);
            same::<u128>(body);
            same::<Option<String>>(body);
            same::<(crate::Bytes,)>(body);
            same::<std::collections::BTreeMap<String, u8>>(body);
            same::<Result<crate::Bytes, String>>(body);
            same::<()>(body);
            same::<Image>(body);
            same::<Pair>(body);
            same::<Either>(body);
            same::<Tag>(body);
            same::<Digest>(body);
        }
    }
}
