//! The caller's reader of a result frame ([`crate::wire::frame`]): from
//! pieces as they arrive, with memory that follows what actually arrives.

use super::frame::{Kind, HEADER_LEN};

/// A complete frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub kind: Kind,
    pub body: Vec<u8>,
    /// The body was one large MessagePack binary and holds its data only:
    /// the binary's header was left out as it arrived (see
    /// [`crate::wire::handover::decode_owned`]).
    pub headless: bool,
}

/// Why a byte stream is not a frame rwt accepts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The kind byte is none of ours.
    BadKind(u8),
    /// The length prefix is over the result limit.
    TooLarge { len: u64, limit: u64 },
    /// The body, under the limit, could not be allocated as it arrived.
    OutOfMemory { len: u64 },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadKind(b) => write!(f, "malformed result frame (kind byte {b:#04x})"),
            FrameError::TooLarge { len, limit } => write!(
                f,
                "result of {len} bytes exceeds the limit of {limit} bytes"
            ),
            FrameError::OutOfMemory { len } => {
                write!(f, "result of {len} bytes: out of memory while receiving it")
            }
        }
    }
}

/// Collects a frame from pieces as they arrive, or reads it straight from
/// a descriptor ([`FrameReader::read_body`]). The body's memory follows
/// the bytes that actually arrive (at first [`FIRST`] at most, then
/// doubling, up to the length the header claims, which is never over the
/// limit), and every allocation is fallible: a child that claims 1 GiB and
/// sends 9 bytes costs the caller 64 MiB of untouched address space, and a
/// claim the caller cannot back is a `Codec` error, never an abort.
///
/// [`FIRST`]: crate::wire::bigbuf::FIRST
#[derive(Debug)]
pub(crate) struct FrameReader {
    limit: u64,
    header: [u8; HEADER_LEN],
    header_len: usize,
    kind: Option<Kind>,
    /// What the header claims.
    len: usize,
    body: Vec<u8>,
    /// A [`Kind::Leaving`] header arrived right after the frame, in the
    /// same read: the pool worker that answered will not serve again.
    leaving_follows: bool,
    /// The body's first allocation at most ([`FIRST`]).
    ///
    /// [`FIRST`]: crate::wire::bigbuf::FIRST
    first: usize,
    /// The header of a large binary that is the whole value was left out
    /// of `body` (and of `len`).
    headless: bool,
}

impl FrameReader {
    pub(crate) fn new(limit: u64) -> Self {
        FrameReader {
            limit,
            header: [0; HEADER_LEN],
            header_len: 0,
            kind: None,
            len: 0,
            body: Vec::new(),
            leaving_follows: false,
            first: crate::wire::bigbuf::FIRST,
            headless: false,
        }
    }

    /// A reader whose body starts at `first` bytes at most.
    #[cfg(test)]
    fn with_first(limit: u64, first: usize) -> Self {
        FrameReader {
            first,
            ..FrameReader::new(limit)
        }
    }

    /// Did the sender say, right after the frame, that it is leaving?
    pub(crate) fn leaving_follows(&self) -> bool {
        self.leaving_follows
    }

    /// The kind of the frame, once its header is in.
    pub(crate) fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// Is the frame whole?
    pub(crate) fn is_complete(&self) -> bool {
        self.kind.is_some() && self.body.len() == self.len
    }

    /// Once the header is known, reads what `fd` has of the body straight
    /// into place: `None` before that (the header comes through
    /// [`FrameReader::feed`]), else what the read returned.
    pub(crate) fn read_body(
        &mut self,
        fd: &impl std::os::fd::AsFd,
    ) -> Result<Option<nix::Result<usize>>, FrameError> {
        if self.kind.is_none() {
            return Ok(None);
        }
        self.make_room()?;
        Ok(Some(crate::wire::bigbuf::read_into_spare(
            fd,
            &mut self.body,
        )))
    }

    fn make_room(&mut self) -> Result<(), FrameError> {
        crate::wire::bigbuf::grow_towards(&mut self.body, self.len, self.first).map_err(|_| {
            FrameError::OutOfMemory {
                len: self.len as u64,
            }
        })
    }

    /// Takes bytes read from the channel. Bytes past the end of the frame
    /// are ignored, but a [`Kind::Leaving`] header there is noted
    /// ([`FrameReader::leaving_follows`]).
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), FrameError> {
        if self.kind.is_none() {
            let take = data.len().min(HEADER_LEN - self.header_len);
            self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
            self.header_len += take;
            data = &data[take..];
            if self.header_len < HEADER_LEN {
                return Ok(());
            }
            let kind =
                Kind::from_byte(self.header[0]).ok_or(FrameError::BadKind(self.header[0]))?;
            let mut len = [0u8; 8];
            len.copy_from_slice(&self.header[1..]);
            let len = u64::from_le_bytes(len);
            let too_large = FrameError::TooLarge {
                len,
                limit: self.limit,
            };
            if len > self.limit {
                return Err(too_large);
            }
            self.len = usize::try_from(len).map_err(|_| too_large)?;
            self.kind = Some(kind);
            // A value that is one large binary, whose header came in this
            // piece: its data alone is kept, so that the body can become
            // the value's own buffer without a copy.
            if matches!(kind, Kind::Value | Kind::Failed) {
                if let Some(start) = crate::wire::handover::binary_start(data, self.len) {
                    data = &data[start..];
                    self.len -= start;
                    self.headless = true;
                }
            }
        }
        while !data.is_empty() && !self.is_complete() {
            self.make_room()?;
            let room = self.body.capacity() - self.body.len();
            let take = data.len().min(room).min(self.len - self.body.len());
            self.body.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        if self.is_complete() && data.first() == Some(&Kind::Leaving.byte()) {
            self.leaving_follows = true;
        }
        Ok(())
    }

    /// The frame, once complete.
    pub(crate) fn into_frame(self) -> Option<Frame> {
        match self.kind {
            Some(kind) if self.is_complete() => Some(Frame {
                kind,
                body: self.body,
                headless: self.headless,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::{decode, encode};
    use crate::wire::frame::header;

    fn frame(kind: Kind, body: &[u8]) -> Vec<u8> {
        let mut v = header(kind, body.len()).to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_frame_arrives_in_any_pieces() {
        let bytes = frame(Kind::Value, &encode(&vec![7u32; 1000]).unwrap());
        for piece in [1, 2, 8, 9, 10, 4096, bytes.len()] {
            let mut r = FrameReader::new(1 << 20);
            for chunk in bytes.chunks(piece) {
                assert!(!r.is_complete());
                r.feed(chunk).unwrap();
            }
            let f = r.into_frame().unwrap();
            assert_eq!(f.kind, Kind::Value);
            assert_eq!(decode::<Vec<u32>>(&f.body).unwrap(), vec![7u32; 1000]);
        }
    }

    #[test]
    fn empty_body_and_trailing_bytes() {
        let mut bytes = frame(Kind::Panic, b"");
        bytes.extend_from_slice(b"junk after the frame");
        let mut r = FrameReader::new(10);
        r.feed(&bytes).unwrap();
        let f = r.into_frame().unwrap();
        assert_eq!((f.kind, f.body.len()), (Kind::Panic, 0));
    }

    #[test]
    fn a_huge_prefix_is_refused_before_allocating() {
        let mut h = header(Kind::Value, 0);
        h[1..].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let mut r = FrameReader::new(1 << 30);
        assert_eq!(
            r.feed(&h),
            Err(FrameError::TooLarge {
                len: 1 << 40,
                limit: 1 << 30
            })
        );
        assert_eq!(r.body.capacity(), 0);
    }

    #[test]
    fn a_lying_prefix_under_the_cap_is_an_incomplete_frame() {
        let mut h = header(Kind::Value, 0);
        h[1..].copy_from_slice(&(1u64 << 29).to_le_bytes());
        let mut r = FrameReader::with_first(1 << 30, 1 << 20);
        r.feed(&h).unwrap();
        r.feed(&[0u8; 100]).unwrap();
        assert!(!r.is_complete());
        // Memory follows what arrived, not what the prefix claims.
        assert!(r.body.capacity() <= 1 << 20, "{}", r.body.capacity());
        assert!(r.into_frame().is_none());
    }

    #[test]
    fn the_body_grows_with_what_arrives_and_keeps_every_byte() {
        let first = 1 << 16;
        let body: Vec<u8> = (0..5 * first + 17).map(|i| i as u8).collect();
        let mut r = FrameReader::with_first(1 << 30, first);
        r.feed(&header(Kind::Value, body.len())).unwrap();
        for (i, piece) in body.chunks(10_000).enumerate() {
            r.feed(piece).unwrap();
            let arrived = ((i + 1) * 10_000).min(body.len());
            assert!(
                r.body.capacity() <= (2 * arrived).max(first),
                "{} bytes held for {arrived}",
                r.body.capacity()
            );
        }
        assert_eq!(r.into_frame().unwrap().body, body);
    }

    #[test]
    fn reading_straight_into_the_body() {
        let body = encode(&"direct").unwrap();
        let (rx, tx) = nix::unistd::pipe().unwrap();
        let mut r = FrameReader::new(100);
        assert!(r.read_body(&rx).unwrap().is_none());
        r.feed(&header(Kind::Value, body.len())).unwrap();
        nix::unistd::write(&tx, &body).unwrap();
        assert_eq!(r.read_body(&rx).unwrap().unwrap(), Ok(body.len()));
        assert!(r.is_complete());
        assert_eq!(
            decode::<String>(&r.into_frame().unwrap().body).unwrap(),
            "direct"
        );
    }

    /// A value that is one large binary arrives without the binary's
    /// header when the header comes in the frame's first piece, so that
    /// its body can become the value; in smaller pieces, or in a frame of
    /// text, the body is kept whole. Either way it decodes to the same.
    #[test]
    fn a_large_binary_value_arrives_headless() {
        use crate::wire::handover::{decode_owned, HAND_OVER};
        let data: Vec<u8> = (0..=HAND_OVER).map(|i| i as u8).collect();
        let body = encode(&crate::Bytes(data.clone())).unwrap();
        for (kind, piece, headless) in [
            (Kind::Value, 4096, true),
            (Kind::Failed, HEADER_LEN + 5, true),
            (Kind::Value, HEADER_LEN + 4, false),
            (Kind::Value, 1, false),
            (Kind::Panic, 4096, false),
        ] {
            let mut r = FrameReader::new(1 << 30);
            for chunk in frame(kind, &body).chunks(piece) {
                r.feed(chunk).unwrap();
            }
            let f = r.into_frame().unwrap();
            assert_eq!((f.kind, f.headless), (kind, headless), "pieces of {piece}");
            assert_eq!(f.body.len(), if headless { data.len() } else { body.len() });
            let got: crate::Bytes = decode_owned(f.body, f.headless).unwrap();
            assert!(got.0 == data, "pieces of {piece}");
        }
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let mut r = FrameReader::new(10);
        assert_eq!(r.feed(&[b'X'; 9]), Err(FrameError::BadKind(b'X')));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever arrives, in whatever pieces: no panic, and memory
            /// bounded by the cap.
            #[test]
            fn arbitrary_bytes_never_panic_nor_overallocate(
                bytes in proptest::collection::vec(any::<u8>(), 0..4096),
                cut in 1usize..64,
                limit in 0u64..1_000_000,
            ) {
                let mut r = FrameReader::new(limit);
                for piece in bytes.chunks(cut) {
                    if r.feed(piece).is_err() {
                        break;
                    }
                    // Never more than the cap, whatever the prefix says.
                    prop_assert!(r.body.capacity() as u64 <= limit, "{} > {limit}", r.body.capacity());
                }
                if let Some(frame) = r.into_frame() {
                    prop_assert!(frame.body.len() as u64 <= limit);
                    // Decoding junk is an error, never a panic.
                    let _ = decode::<Vec<String>>(&frame.body);
                    let _ = decode::<(u64, Option<f64>, Vec<u8>)>(&frame.body);
                }
            }

            /// Every value of the tested types crosses unchanged, whatever
            /// the pieces it arrives in.
            #[test]
            fn values_round_trip(
                value in proptest::collection::vec((any::<u32>(), ".{0,20}"), 0..50),
                cut in 1usize..100,
            ) {
                let body = encode(&value).unwrap();
                let mut bytes = header(Kind::Value, body.len()).to_vec();
                bytes.extend_from_slice(&body);
                let mut r = FrameReader::new(1 << 20);
                for piece in bytes.chunks(cut) {
                    r.feed(piece).unwrap();
                }
                let frame = r.into_frame().unwrap();
                prop_assert_eq!(decode::<Vec<(u32, String)>>(&frame.body).unwrap(), value);
            }
        }
    }
}
