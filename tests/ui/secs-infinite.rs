#[rwt::timeout(secs = 1e400)]
fn f() -> u8 {
    1
}

fn main() {}
