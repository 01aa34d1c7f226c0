#[rwt::timeout(cpu = -1.5)]
fn f() -> u8 {
    1
}

fn main() {}
