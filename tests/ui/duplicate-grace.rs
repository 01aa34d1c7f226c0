#[rwt::timeout(grace = 0.1, grace = 0.2)]
fn f() -> u8 {
    1
}

fn main() {}
