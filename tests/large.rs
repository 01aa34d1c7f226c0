//! Results of any size come back whole, without deadlock: the parent reads
//! while it waits, across the pipe buffer's boundary and far beyond.

use rwt::timeout;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes encoded as one MessagePack binary (as `serde_bytes` would), not
/// as an array of numbers.
#[derive(Debug, PartialEq)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[timeout(secs = 20.0)]
fn blob(len: usize) -> Blob {
    Blob(pattern(len))
}

#[test]
fn results_around_the_pipe_buffer_size() {
    // A frame's header is 9 bytes and MessagePack adds up to 5: cover the
    // whole frame landing just under, on and just over 64 KiB too.
    for len in [
        0,
        1,
        65_521,
        65_522,
        65_523,
        65_535,
        65_536,
        65_537,
        1 << 20,
    ] {
        assert_eq!(blob(len).unwrap(), Blob(pattern(len)), "len {len}");
    }
}

#[test]
fn a_64_mib_result_is_byte_identical() {
    let len = 64 << 20;
    let got = blob(len).unwrap();
    assert_eq!(got.0.len(), len);
    assert!(got.0 == pattern(len));
}

#[timeout(secs = 20.0)]
fn numbers(len: usize) -> Vec<u8> {
    pattern(len)
}

#[test]
fn a_plain_vec_of_bytes_comes_back_too() {
    let len = 1 << 20;
    assert_eq!(numbers(len).unwrap(), pattern(len));
}

#[test]
fn a_result_over_the_limit_is_a_codec_error() {
    let opts = rwt::Options::new().secs(10.0).result_limit(1 << 20);
    match rwt::run_with_timeout(&opts, || Blob(vec![0; 2 << 20])) {
        Err(rwt::Error::Codec { detail, .. }) => {
            assert!(
                detail.contains("exceeds the limit of 1048576 bytes"),
                "{detail}"
            );
        }
        other => panic!("expected Codec, got {other:?}"),
    }
}
