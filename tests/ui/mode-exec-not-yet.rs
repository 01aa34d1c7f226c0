#[rwt::timeout(mode = "exec")]
fn f() -> u8 {
    1
}

fn main() {}
