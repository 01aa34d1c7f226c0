#[rwt::timeout(timeout = 1.0)]
fn f() -> u8 {
    1
}

fn main() {}
