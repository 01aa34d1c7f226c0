#[rwt::timeout(memory = 512)]
fn f() -> u8 {
    1
}

fn main() {}
