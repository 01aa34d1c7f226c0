#[rwt::timeout(memory = "0 MiB")]
fn f() -> u8 {
    1
}

fn main() {}
