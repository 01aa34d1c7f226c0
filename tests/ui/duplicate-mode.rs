#[rwt::timeout(mode = "fork", mode = "fork")]
fn f() -> u8 {
    1
}

fn main() {}
