#[rwt::timeout(kill = true, kill = false)]
fn f() -> u8 {
    1
}

fn main() {}
