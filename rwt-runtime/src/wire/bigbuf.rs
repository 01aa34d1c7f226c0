//! Large buffers that ask for transparent huge pages before their first
//! write.
//!
//! A payload crosses several fresh buffers (encoded arguments, the frame
//! read, the decoded value, on both sides), and the first write into fresh
//! memory costs a page fault per 4 KiB page. On the development machine,
//! copying 16 MiB into a fresh mapping took 7.3 ms, of which 6 ms were the
//! 4,096 faults; with `MADV_HUGEPAGE` 2.1-4.2 ms (8 faults of 2 MiB); into
//! memory already touched 1.2-1.8 ms. So rwt's own buffers of 4 MiB and
//! more advise huge pages on their 2 MiB-aligned interior, while still
//! untouched. The advice only changes how the kernel backs the memory, never
//! its contents; with transparent huge pages set to `never` (or off Linux)
//! it does nothing. Buffers handed to the user (a decoded `Bytes`, or a
//! result body handed over whole, see `handover::decode_owned`) are `Vec`s
//! from the global allocator, some of them with that advice.

use std::collections::TryReserveError;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Buffers this large get the advice: at least one whole aligned huge page.
const MIN: usize = 4 << 20;

/// A zeroed buffer of `len` bytes. Large ones come from `calloc`, which
/// maps fresh (untouched) memory for them, and then get the advice.
pub(crate) fn zeroed(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    advise(v.as_mut_ptr(), len);
    v
}

/// An empty buffer with room for `capacity` bytes, advised if large.
pub(crate) fn with_capacity(capacity: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(capacity);
    advise(v.as_mut_ptr(), v.capacity());
    v
}

/// The most room a frame body gets before any of it arrives, whatever its
/// header claims: up to this, one allocation of the claimed size (its pages
/// are untouched until written, so resident memory follows the bytes
/// anyway, and a payload of this size is one buffer with huge pages);
/// past it, the buffer doubles as bytes arrive, so a forged claim of 1 GiB
/// costs 64 MiB of address space, not 1 GiB.
pub(crate) const FIRST: usize = 64 << 20;

/// Makes room in `v` for more bytes, on the way to `total`: at least
/// `first`, then doubling, never past `total`. Fallible: a claim the
/// process cannot back is an error, not an abort.
pub(crate) fn grow_towards(
    v: &mut Vec<u8>,
    total: usize,
    first: usize,
) -> Result<(), TryReserveError> {
    if v.capacity() > v.len() || v.len() >= total {
        return Ok(());
    }
    let want = total.min(first.max(v.capacity().saturating_mul(2)));
    v.try_reserve_exact(want - v.len())?;
    let spare = v.spare_capacity_mut();
    advise(spare.as_mut_ptr().cast(), spare.len());
    Ok(())
}

/// Reads from `fd` into the spare capacity of `v` (no zeroing: the kernel
/// writes the bytes), and extends `v` by what was read.
pub(crate) fn read_into_spare(fd: &impl AsFd, v: &mut Vec<u8>) -> nix::Result<usize> {
    let spare = v.spare_capacity_mut();
    // SAFETY: `spare` is writable memory of `spare.len()` bytes owned by
    // `v`; read(2) writes at most that many bytes into it and reports how
    // many, and only those are counted as initialised below.
    let n = unsafe {
        nix::libc::read(
            fd.as_fd().as_raw_fd(),
            spare.as_mut_ptr().cast(),
            spare.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| nix::errno::Errno::last())?;
    // SAFETY: read(2) initialised the first `n` bytes of the spare capacity.
    unsafe { v.set_len(v.len() + n) };
    Ok(n)
}

/// A growable buffer to encode into: grows like a `Vec` (doubling) and
/// advises each large new allocation before writing into it.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl io::Write for Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let v = &mut self.0;
        if v.capacity() - v.len() < data.len() {
            let want = (v.len() + data.len()).max(2 * v.capacity());
            v.reserve_exact(want - v.len());
            let spare = v.spare_capacity_mut();
            advise(spare.as_mut_ptr().cast(), spare.len());
        }
        v.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Asks for huge pages on the 2 MiB-aligned part of `[start, start + len)`
/// (which must lie in one allocation of ours), if it is large.
#[cfg(target_os = "linux")]
fn advise(start: *mut u8, len: usize) {
    const HUGE: usize = 2 << 20;
    if len < MIN {
        return;
    }
    let addr = start as usize;
    let first = addr.next_multiple_of(HUGE);
    let end = (addr + len) & !(HUGE - 1);
    if end <= first {
        return;
    }
    // SAFETY: `[first, end)` lies inside the caller's allocation (rounded
    // inwards) and is page-aligned. MADV_HUGEPAGE changes only how the
    // kernel backs those pages, not their contents or their validity, so no
    // Rust reference can observe it; an error (no THP support) just leaves
    // ordinary pages.
    unsafe {
        nix::libc::madvise(
            first as *mut nix::libc::c_void,
            end - first,
            nix::libc::MADV_HUGEPAGE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_writer_keeps_every_byte_in_order() {
        let mut w = Writer::default();
        let mut expected = Vec::new();
        for i in 0..40u32 {
            let piece = vec![i as u8; (i as usize) << 16];
            w.write_all(&piece).unwrap();
            expected.extend_from_slice(&piece);
        }
        assert!(w.0.len() > 2 * MIN);
        assert!(w.0 == expected);
    }

    /// The advice takes: a large buffer, once written, is backed by huge
    /// pages (where the kernel offers them and has them to give).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_buffer_gets_huge_pages() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        if !thp.is_ok_and(|mode| !mode.contains("[never]")) {
            println!("skipped: transparent huge pages are off here");
            return;
        }
        let fallbacks = || {
            let stat = std::fs::read_to_string("/proc/vmstat").unwrap();
            stat.lines()
                .find_map(|l| l.strip_prefix("thp_fault_fallback "))
                .map_or(0, |n| n.parse::<u64>().unwrap())
        };
        let before = fallbacks();
        let mut w = Writer::default();
        w.write_all(&vec![1u8; 16 << 20]).unwrap();
        // The advice splits the mapping: look at the part from the first
        // 2 MiB boundary on.
        let huge_kib = huge_kib_at((w.0.as_ptr() as usize).next_multiple_of(2 << 20));
        if huge_kib == 0 && fallbacks() > before {
            println!("skipped: the kernel had no huge page to give");
            return;
        }
        assert!(huge_kib >= 2048, "{huge_kib} KiB of huge pages");
    }

    /// `AnonHugePages` of the mapping that holds `addr`, from smaps.
    #[cfg(target_os = "linux")]
    fn huge_kib_at(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = first.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = (lo..hi).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(kib) = line.strip_prefix("AnonHugePages:") {
                    return kib.trim().trim_end_matches(" kB").trim().parse().unwrap();
                }
            }
        }
        0
    }

    #[test]
    fn buffers_have_the_size_asked_for() {
        for len in [0, 1, MIN - 1, MIN, 3 * MIN + 12_345] {
            let z = zeroed(len);
            assert_eq!(z.len(), len);
            assert!(z.iter().all(|&b| b == 0));
            assert!(with_capacity(len).capacity() >= len);
        }
    }
}
