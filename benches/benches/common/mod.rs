//! What more than one bench needs: functions that overstay a 50 ms
//! deadline, one per mode.

use std::time::Duration;

use rwt::timeout;

/// A function of each mode whose child sleeps far past its 50 ms deadline.
pub type Sleeper = fn() -> Result<u8, rwt::Error>;

#[timeout(secs = 0.05)]
pub fn fork_sleeps() -> u8 {
    std::thread::sleep(Duration::from_secs(10));
    0
}

#[timeout(secs = 0.05, mode = "exec")]
pub fn exec_sleeps() -> u8 {
    std::thread::sleep(Duration::from_secs(10));
    0
}

#[timeout(secs = 0.05, mode = "pool")]
pub fn pool_sleeps() -> u8 {
    std::thread::sleep(Duration::from_secs(10));
    0
}

/// Each mode's sleeper, named.
pub const SLEEPERS: [(&str, Sleeper); 3] = [
    ("fork", fork_sleeps),
    ("exec", exec_sleeps),
    ("pool", pool_sleeps),
];
