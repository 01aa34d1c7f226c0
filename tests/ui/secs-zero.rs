#[rwt::timeout(secs = 0)]
fn f() -> u8 {
    1
}

fn main() {}
