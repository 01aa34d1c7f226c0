#[rwt::timeout(grace = "0.5")]
fn f() -> u8 {
    1
}

fn main() {}
