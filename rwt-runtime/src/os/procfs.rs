//! What rwt reads of `/proc`, for both sides of the boundary: a
//! process's `stat` fields, the child's own `statm`, the overcommit mode.

/// The fields of a `/proc/<pid>/stat` line from the third (the state) on.
/// The second, the command name, is in parentheses and may hold anything
/// (spaces, parentheses): the fields are counted from its last `)`.
pub(crate) fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat.get(stat.rfind(')')? + 1..)?.split_whitespace())
}

/// Whether the system runs with strict overcommit (then it may refuse
/// memory below a limit, and rwt names no refusal). Read once per process:
/// the caller reads it when a call first has a memory limit, so that its
/// fork children find it known; a change of the setting afterwards is not
/// seen.
pub(crate) fn strict_overcommit() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: not read yet; 1: no; 2: yes.
    static STRICT: AtomicU8 = AtomicU8::new(0);
    match STRICT.load(Ordering::Relaxed) {
        0 => {
            let strict = read_strict_overcommit();
            STRICT.store(if strict { 2 } else { 1 }, Ordering::Relaxed);
            strict
        }
        known => known == 2,
    }
}

/// The start of a small file, read into `buf` without allocating (a
/// fork child's allocations cost copy-on-write faults).
pub(crate) fn read_small<'b>(path: &std::ffi::CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    // SAFETY: open(2) of a NUL-terminated path.
    let fd = unsafe { nix::libc::open(path.as_ptr(), nix::libc::O_RDONLY | nix::libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: reads into the unfilled rest of `buf`.
        let n = unsafe { nix::libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n <= 0 {
            break;
        }
        len += n.unsigned_abs();
    }
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { nix::libc::close(fd) };
    Some(&buf[..len])
}

/// The data segment and main stack of a `/proc/<pid>/statm` (its sixth
/// field), in bytes.
pub(crate) fn statm_data(statm: &[u8]) -> Option<u64> {
    let field = statm.split(|&b| b == b' ').nth(5)?;
    let mut pages: u64 = 0;
    for &b in field.iter().take_while(|b| b.is_ascii_digit()) {
        pages = pages.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    // SAFETY: sysconf takes an integer and reads no memory.
    let page = u64::try_from(unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) }).ok()?;
    (!field.is_empty() && field[0].is_ascii_digit()).then(|| pages.saturating_mul(page))
}

/// `/proc/sys/vm/overcommit_memory` says `2` (unreadable: not strict,
/// the kernel's default).
fn read_strict_overcommit() -> bool {
    let mut mode = [0u8; 8];
    read_small(c"/proc/sys/vm/overcommit_memory", &mut mode)
        .is_some_and(|m| m.first() == Some(&b'2'))
}

#[cfg(test)]
mod tests {
    use super::stat_fields;

    #[test]
    fn fields_are_counted_past_a_name_with_parentheses() {
        let mut fields = stat_fields("42 (a) b (c)) S 17 42 42 0").unwrap();
        assert_eq!(fields.next(), Some("S"));
        assert_eq!(fields.next(), Some("17"));
        assert!(stat_fields("42 (x").is_none());
    }

    #[test]
    fn the_data_size_is_read_from_statm() {
        // SAFETY: sysconf takes an integer and reads no memory.
        let page = u64::try_from(unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) }).unwrap();
        assert_eq!(
            super::statm_data(b"1000 200 100 50 0 1234 0\n"),
            Some(1234 * page)
        );
        assert_eq!(super::statm_data(b"1000 200 100\n"), None);
        let mut buf = [0u8; 256];
        let mine = std::fs::read("/proc/self/statm").unwrap();
        buf[..mine.len()].copy_from_slice(&mine);
        assert!(super::statm_data(&buf[..mine.len()]).unwrap() > 0);
    }
}
