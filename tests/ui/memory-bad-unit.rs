#[rwt::timeout(memory = "512 MiBs")]
fn f() -> u8 {
    1
}

fn main() {}
