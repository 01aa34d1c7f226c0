//! Limits beyond time: `cargo run --example limits`.
//!
//! Hostile input does not only loop. Here one input makes a parser allocate
//! without end, another makes it burn CPU; `memory` and `cpu` stop both
//! long before their deadline, and every answer says what the child used.

use rwt::{timeout, Error};

/// A stand-in for a parser that trusts a length field in its input: a
/// "length" of 8 GiB makes it reserve 8 GiB.
#[timeout(secs = 10.0, memory = "256 MiB", mode = "pool")]
fn parse_header(declared_len: u64) -> usize {
    let body: Vec<u8> = Vec::with_capacity(declared_len as usize);
    body.capacity()
}

/// A stand-in for a regex that backtracks forever on some inputs.
#[timeout(secs = 10.0, cpu = 0.5, mode = "pool")]
fn backtrack(rounds: u64) -> u64 {
    let mut h = 0u64;
    for i in 0..rounds {
        h = std::hint::black_box(h.rotate_left(5) ^ i);
    }
    h
}

fn report<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    match result {
        Ok(value) => println!("{what}: ok, {value:?}"),
        Err(err) => {
            println!("{what}: {err}");
            if let Some(usage) = err.usage() {
                println!("    the child used {usage}");
            }
        }
    }
}

fn main() {
    report("header declaring 1 KiB", parse_header(1 << 10));
    // The reservation is refused at once; the caller's memory is untouched.
    report("header declaring 8 GiB", parse_header(8 << 30));
    report("100 thousand rounds", backtrack(100_000));
    // Stopped after half a second of CPU, not after the 10 s deadline.
    report("unbounded rounds", backtrack(u64::MAX));

    // At run time, with the usage of a value that came back.
    let opts = rwt::Options::new().secs(5.0).memory(64 << 20);
    let (sum, usage) =
        rwt::run_with_usage(&opts, || (1..=1_000_000u64).sum::<u64>()).expect("fits in its limits");
    println!("sum of 1..=1000000: {sum}");
    if let Some(usage) = usage {
        println!("    the child used {usage}");
    }
}
