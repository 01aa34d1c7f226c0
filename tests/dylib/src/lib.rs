//! A library loaded with `dlopen`: its exec-mode function cannot be found by
//! a fresh run of the host executable, and must say so at once.

#[rwt::timeout(secs = 2.0, mode = "exec")]
fn inside_library(x: u32) -> u32 {
    x + 1
}

#[rwt::timeout(secs = 2.0)]
fn forked_from_library(x: u32) -> u32 {
    x + 1
}

/// Writes what both calls returned into `out` (at most `cap` bytes) and
/// returns the length written.
///
/// # Safety
///
/// `out` must be valid for writes of `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn rwt_dylib_call(out: *mut u8, cap: usize) -> usize {
    let text = format!(
        "exec: {} | fork: {:?}",
        match inside_library(1) {
            Ok(v) => format!("Ok({v})"),
            Err(e) => format!("Err({e})"),
        },
        forked_from_library(1).map_err(|e| e.to_string())
    );
    let n = text.len().min(cap);
    // SAFETY: the caller promises `out` holds `cap` bytes; n <= cap.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), out, n) };
    n
}
