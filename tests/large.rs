//! Results (and exec mode's arguments) of any size cross whole, without
//! deadlock: the parent reads while it waits, across the pipe buffer's
//! boundary and far beyond. In every mode (fork, exec, pool).

mod common;

use std::time::{Duration, Instant};

/// Bytes that cross as one MessagePack binary.
pub type Blob = rwt::Bytes;

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// `len` bytes of a pattern that differs with `seed`.
pub fn seeded(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8 ^ seed).collect()
}

/// From this size on, a result that is one MessagePack binary becomes the
/// caller's value without a copy (rwt-runtime's `wire::handover::HAND_OVER`).
const HAND_OVER: usize = 1 << 20;

/// A newtype of a blob: it crosses as the same one binary.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
pub struct Image(pub Blob);

in_every_mode! {
    #[timeout(secs = 20.0)]
    fn blob(len: usize) -> Blob {
        Blob::from(pattern(len))
    }

    #[timeout(secs = 20.0)]
    fn image(len: usize, seed: u8) -> Image {
        Image(Blob::from(seeded(len, seed)))
    }

    #[timeout(secs = 20.0)]
    fn maybe_blob(len: usize) -> Option<Blob> {
        Some(Blob::from(pattern(len)))
    }

    /// A binary followed by more: not one binary.
    #[timeout(secs = 20.0)]
    fn blob_and_tail(len: usize) -> (Blob, u8) {
        (Blob::from(pattern(len)), 7)
    }

    /// One binary in a `Result`: an enum, not one binary.
    #[timeout(secs = 20.0)]
    fn checked_blob(len: usize) -> Result<Blob, String> {
        Ok(Blob::from(pattern(len)))
    }

    #[timeout(secs = 20.0)]
    fn numbers(len: usize) -> Vec<u8> {
        pattern(len)
    }

    #[timeout(secs = 20.0)]
    fn quarter_gib() -> Blob {
        Blob::from(vec![0xab; 256 << 20])
    }

    /// Sends a large argument in and gets its length and checksum back.
    #[timeout(secs = 20.0)]
    fn weigh(data: &Blob) -> (usize, u64) {
        (data.0.len(), data.0.iter().map(|&b| u64::from(b)).sum())
    }
}

test_in_every_mode! {
    fn a_quarter_gib_result_is_whole(m) {
        let start = Instant::now();
        let got = m::quarter_gib().unwrap();
        assert!(start.elapsed() < Duration::from_secs(15), "{:?}", start.elapsed());
        assert_eq!(got.0.len(), 256 << 20);
        assert!(got.0 == vec![0xab; 256 << 20]);
    }

    fn results_around_the_pipe_buffer_size(m) {
        // A frame's header is 9 bytes and MessagePack adds up to 5: cover
        // the whole frame landing just under, on and just over 64 KiB too.
        for len in [0, 1, 65_521, 65_522, 65_523, 65_535, 65_536, 65_537, 1 << 20] {
            assert_eq!(m::blob(len).unwrap(), Blob::from(pattern(len)), "len {len}");
        }
    }

    /// One byte either side of the size from which a result that is one
    /// binary is handed over instead of copied: every shape of such a
    /// value, and values that only contain one, come back equal.
    fn results_around_the_hand_over_size(m) {
        for len in [HAND_OVER - 1, HAND_OVER, HAND_OVER + 1] {
            let want = Blob::from(pattern(len));
            assert_eq!(m::blob(len).unwrap(), want, "len {len}");
            assert_eq!(m::image(len, 3).unwrap(), Image(Blob::from(seeded(len, 3))), "len {len}");
            assert_eq!(m::maybe_blob(len).unwrap(), Some(want.clone()), "len {len}");
            assert_eq!(m::blob_and_tail(len).unwrap(), (want.clone(), 7), "len {len}");
            assert_eq!(m::checked_blob(len).unwrap(), Ok(want), "len {len}");
        }
    }

    /// Callers at once, each with results past the hand-over size: each
    /// gets its own.
    fn concurrent_large_results_each_reach_their_own_caller(m) {
        let callers: Vec<_> = (0..6u8)
            .map(|seed| {
                std::thread::spawn(move || {
                    for round in 0..3usize {
                        let len = HAND_OVER + usize::from(seed) * 4099 + round;
                        let got = m::image(len, seed).unwrap();
                        assert!(got.0 .0 == seeded(len, seed), "caller {seed} round {round}");
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
    }

    fn a_64_mib_result_is_byte_identical(m) {
        let len = 64 << 20;
        let got = m::blob(len).unwrap();
        assert_eq!(got.0.len(), len);
        assert!(got.0 == pattern(len));
    }

    fn a_plain_vec_of_bytes_comes_back_too(m) {
        let len = 1 << 20;
        assert_eq!(m::numbers(len).unwrap(), pattern(len));
    }

    fn a_64_mib_argument_arrives_whole(m) {
        let data = Blob::from(pattern(64 << 20));
        let sum: u64 = data.0.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(m::weigh(&data).unwrap(), (64 << 20, sum));
    }
}

#[test]
fn a_result_over_the_limit_is_a_codec_error() {
    let opts = rwt::Options::new().secs(10.0).result_limit(1 << 20);
    match rwt::run_with_timeout(&opts, || Blob::from(vec![0u8; 2 << 20])) {
        Err(rwt::Error::Codec { detail, .. }) => {
            assert!(
                detail.contains("exceeds the limit of 1048576 bytes"),
                "{detail}"
            );
        }
        other => panic!("expected Codec, got {other:?}"),
    }
}
