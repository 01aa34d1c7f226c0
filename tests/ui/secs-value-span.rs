#[rwt::timeout(
    ntries = 2,
    secs =
        -0.5,
)]
fn f() -> u8 {
    1
}

fn main() {}
