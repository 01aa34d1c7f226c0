//! A panic is `Panicked` under `panic = "abort"` too (RELIABILITY.md D2):
//! in a program built with `panic = "abort"`, a panic in the child is
//! still `Error::Panicked` with its message and location. Builds and runs
//! tests/panic-abort (its own workspace, so its own profile).

use std::process::Command;
use std::time::Instant;

#[test]
fn under_panic_abort_a_panic_is_still_panicked_with_its_location() {
    let root = env!("CARGO_MANIFEST_DIR");
    let start = Instant::now();
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(format!("{root}/tests/panic-abort/Cargo.toml"))
        .env("CARGO_TARGET_DIR", format!("{root}/target/panic-abort"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for mode in ["fork", "exec"] {
        let want = format!("{mode}: Panicked: boom (src/main.rs:");
        assert!(stdout.contains(&want), "{want} not in:\n{stdout}\n{stderr}");
    }
    println!("built and ran in {:?}", start.elapsed());
}
