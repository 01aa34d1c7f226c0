#[rwt::timeout(ntries = 2, ntries = 3)]
fn f() -> u8 {
    1
}

fn main() {}
