//! The expansion raises no rustc warning under strict lints (clippy's are
//! checked on a library crate, tests/strict-lints, by CI's clippy run).
#![deny(
    warnings,
    missing_docs,
    unused_qualifications,
    unused_results,
    unreachable_pub,
    trivial_casts,
    trivial_numeric_casts,
    unused_extern_crates,
    single_use_lifetimes,
    variant_size_differences
)]

/// Doubles.
#[rwt::timeout(secs = 1.0, ntries = 2, kill = false, grace = 0.5)]
pub fn doubled(x: u64) -> u64 {
    x * 2
}

/// Fails politely.
#[rwt::timeout]
pub fn fallible(x: u8) -> Result<u8, String> {
    if x > 0 { Ok(x) } else { Err("zero".into()) }
}

fn main() {
    let _ = doubled(2);
    let _ = fallible(0);
}
