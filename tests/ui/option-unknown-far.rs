#[rwt::timeout(banana = 3)]
fn f() -> u8 {
    1
}

fn main() {}
