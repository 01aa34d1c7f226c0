#[rwt::timeout(ntries = -2)]
fn f() -> u8 {
    1
}

fn main() {}
