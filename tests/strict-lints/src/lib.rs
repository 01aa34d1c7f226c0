//! A library whose exported API is made of `#[rwt::timeout]` functions:
//! the expansion must compile without a warning under strict lints, rustc's
//! and clippy's (pedantic included), as CI's `cargo clippy --workspace
//! --all-targets -- -D warnings` checks.
#![deny(
    missing_docs,
    warnings,
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    unused_results,
    unreachable_pub,
    trivial_casts
)]

use serde::{Deserialize, Serialize};

/// A value that crosses processes.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal.
    pub x: i64,
    /// Vertical.
    pub y: i64,
}

/// Moves a point.
#[rwt::timeout(secs = 2.0, ntries = 2, kill = true, grace = 0.1)]
pub fn moved(p: Point, dx: i64) -> Point {
    Point {
        x: p.x + dx,
        y: p.y,
    }
}

/// Parses a number.
#[rwt::timeout(secs = 2.0)]
pub fn parsed(text: &str) -> Result<u32, String> {
    text.parse::<u32>().map_err(|e| e.to_string())
}

/// Does nothing, in a child.
#[rwt::timeout]
pub fn nothing() {}

/// A holder of a method.
pub struct Holder(pub u8);

impl Holder {
    /// Reads the value in a child.
    #[rwt::timeout(secs = 2.0)]
    pub fn get(&self) -> u8 {
        self.0
    }
}

#[cfg(test)]
#[test]
fn strictly_linted_expansions_work() {
    assert_eq!(
        moved(Point { x: 1, y: 2 }, 3).unwrap(),
        Point { x: 4, y: 2 }
    );
    assert_eq!(parsed("7").unwrap(), Ok(7));
    nothing().unwrap();
    assert_eq!(Holder(9).get().unwrap(), 9);
}
