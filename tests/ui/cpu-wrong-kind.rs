#[rwt::timeout(cpu = "2 s")]
fn f() -> u8 {
    1
}

fn main() {}
