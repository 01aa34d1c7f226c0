//! The `#[timeout]` and `#[test]` attributes of [rwt](https://docs.rs/rwt). An
//! implementation detail: use it through `rwt`, which documents it.
//!
//! A pipeline, one stage per (private) module: `ast` (what was written),
//! `attr` (parse the options), `valid` (check options and signature),
//! `expand` (generate; `exec` for exec and pool mode), `fallback` (what to emit when there are errors);
//! `limits` checks the `memory` and `cpu` options for `valid`. `test` is
//! `#[rwt::test]`, built on the same stages.

#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::pedantic)]
// The pedantic lints this crate does not follow, and why: option values
// are checked for range before they are converted (`memory`, `cpu`,
// `ntries`), so the conversions cannot lose what matters.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod ast;
mod attr;
mod exec;
mod expand;
mod fallback;
mod limits;
mod test;
mod valid;

use proc_macro::TokenStream;

/// Runs the function in a child process with a deadline. See the `rwt`
/// crate for the options and what they mean.
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::timeout(args.into(), item.into()).into()
}

/// A `#[test]` whose body runs in a child process with a deadline: a hung
/// test fails in place and the run goes on. See the `rwt` crate.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test::test(args.into(), item.into()).into()
}
