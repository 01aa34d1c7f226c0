#[rwt::timeout(mode = "thread")]
fn f() -> u8 {
    1
}

fn main() {}
