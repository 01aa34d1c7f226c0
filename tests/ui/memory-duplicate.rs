#[rwt::timeout(memory = "1 GiB", memory = "2 GiB")]
fn f() -> u8 {
    1
}

fn main() {}
