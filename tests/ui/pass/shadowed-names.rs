//! A crate whose own names shadow std's and serde's: the generated code
//! uses absolute paths only.
#![allow(dead_code, non_camel_case_types)]

mod core {}
mod std {}
mod serde {}
mod rmp_serde {}

struct Result;
struct Error;
struct Option;
struct Ok;
struct Err;
struct Some;
struct None;
struct Box;
struct String;
struct Vec;
fn drop() {}

#[rwt::timeout(secs = 1.0, ntries = 2)]
fn answer(x: u32) -> u32 {
    x + 1
}

#[rwt::timeout]
fn maybe(x: u32) -> ::core::result::Result<u32, u8> {
    ::core::result::Result::Ok(x)
}

fn main() {
    let _ = answer(41);
    let _ = maybe(1);
}
