#[rwt::timeout(cpu = 0.0)]
fn f() -> u8 {
    1
}

fn main() {}
