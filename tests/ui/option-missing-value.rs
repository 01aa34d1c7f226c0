#[rwt::timeout(secs)]
fn f() -> u8 {
    1
}

fn main() {}
