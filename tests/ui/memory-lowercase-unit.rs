#[rwt::timeout(memory = "512 mib")]
fn f() -> u8 {
    1
}

fn main() {}
