#[rwt::timeout(ntries = 2.5)]
fn f() -> u8 {
    1
}

fn main() {}
