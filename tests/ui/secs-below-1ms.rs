#[rwt::timeout(secs = 1e-12)]
fn f() -> u8 {
    1
}

fn main() {}
