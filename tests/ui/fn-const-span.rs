#[rwt::timeout(secs = 1.0)]
pub const fn f() -> u8 {
    1
}

fn main() {}
