//! An exec-mode call from a library loaded with `dlopen` (as a Python or
//! other host would load a Rust extension): a fresh run of the host could
//! never find the function, so the call fails at once with a clear error,
//! and fork mode still works there.

use std::process::Command;
use std::time::Instant;

#[test]
fn an_exec_call_from_a_dlopened_library_is_refused_at_once() {
    let root = env!("CARGO_MANIFEST_DIR");
    let target = format!("{root}/target/dylib");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(format!("{root}/tests/dylib/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(built.success());
    let path = std::ffi::CString::new(format!("{target}/debug/librwt_dylib_check.so")).unwrap();
    // SAFETY: dlopen/dlsym with valid C strings; the symbol has the
    // signature declared below (tests/dylib/src/lib.rs).
    let call = unsafe {
        let lib = nix::libc::dlopen(path.as_ptr(), nix::libc::RTLD_NOW);
        assert!(!lib.is_null(), "dlopen failed");
        let sym = nix::libc::dlsym(lib, c"rwt_dylib_call".as_ptr());
        assert!(!sym.is_null());
        std::mem::transmute::<*mut std::ffi::c_void, unsafe extern "C" fn(*mut u8, usize) -> usize>(
            sym,
        )
    };
    let mut buf = vec![0u8; 1024];
    let start = Instant::now();
    // SAFETY: buf holds 1024 bytes.
    let n = unsafe { call(buf.as_mut_ptr(), buf.len()) };
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(
        text.starts_with("exec: Err(function `inside_library`: could not start a child process: exec and pool modes run a fresh copy of the main executable"),
        "{text}"
    );
    assert!(text.ends_with("fork: Ok(2)"), "{text}");
    assert!(elapsed.as_millis() < 1000, "{elapsed:?}");
}
