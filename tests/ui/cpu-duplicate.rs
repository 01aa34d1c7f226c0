#[rwt::timeout(cpu = 1.0, cpu = 2.0)]
fn f() -> u8 {
    1
}

fn main() {}
