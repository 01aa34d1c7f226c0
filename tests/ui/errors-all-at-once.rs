#[rwt::timeout(sec = 1.0, ntries = 0, kill = "yes", grace = -1, mode = "thread")]
fn f() -> u8 {
    1
}

fn main() {}
