//! Compile-time checks of `#[rwt::timeout]`: every mistake is an error at
//! the user's token (tests/ui/*.rs, snapshots in *.stderr), and every shape
//! the attribute accepts compiles (tests/ui/pass/*.rs).
//!
//! Snapshots are pinned to the toolchain CI uses. To refresh them after a
//! deliberate change: `TRYBUILD=overwrite cargo test --test compiletest`,
//! then read the diff of tests/ui/*.stderr before committing.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
