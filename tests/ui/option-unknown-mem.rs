#[rwt::timeout(mem = "1 GiB")]
fn f() -> u8 {
    1
}

fn main() {}
