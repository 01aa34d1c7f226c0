#[rwt::timeout(retries = 3)]
fn f() -> u8 {
    1
}

fn main() {}
