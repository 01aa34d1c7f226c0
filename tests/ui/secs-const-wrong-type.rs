const LIMIT: u32 = 2;

#[rwt::timeout(secs = LIMIT)]
fn f() -> u8 {
    1
}

fn main() {}
