//! Docs, visibility and other attributes are kept.
#![deny(missing_docs)]

/// Adds one, in a child process.
#[rwt::timeout(secs = 1.0)]
#[inline]
#[allow(clippy::let_and_return)]
pub fn add_one(x: u32) -> u32 {
    let y = x + 1;
    y
}

/// Only built where `all()` holds: always.
#[cfg(all())]
#[rwt::timeout]
pub fn configured() -> bool {
    true
}

#[rwt::timeout]
#[cfg(any())]
fn never_built() -> u8 {
    compile_error!("cfg(any()) removes this function")
}

fn main() {
    let _: Result<u32, rwt::Error> = add_one(1);
    let _: Result<bool, rwt::Error> = configured();
}
