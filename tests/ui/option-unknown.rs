#[rwt::timeout(sec = 1.0)]
fn f() -> u8 {
    1
}

fn main() {}
