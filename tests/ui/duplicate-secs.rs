#[rwt::timeout(secs = 1.0, secs = 2.0)]
fn f() -> u8 {
    1
}

fn main() {}
