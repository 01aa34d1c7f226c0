#[rwt::timeout(mode = fork)]
fn f() -> u8 {
    1
}

fn main() {}
