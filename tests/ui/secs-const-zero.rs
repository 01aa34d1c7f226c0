const LIMIT: f64 = 0.0;

#[rwt::timeout(secs = LIMIT)]
fn f() -> u8 {
    1
}

fn main() {}
