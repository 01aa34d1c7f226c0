#[rwt::timeout(kill = 1)]
fn f() -> u8 {
    1
}

fn main() {}
