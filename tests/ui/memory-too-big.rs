#[rwt::timeout(memory = "99999999999 GiB")]
fn f() -> u8 {
    1
}

fn main() {}
