#[rwt::timeout(mode = "pool")]
fn f() -> u8 {
    1
}

fn main() {}
