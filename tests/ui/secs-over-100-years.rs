#[rwt::timeout(secs = 4e9)]
fn f() -> u8 {
    1
}

fn main() {}
