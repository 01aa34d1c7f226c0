const LIMIT: f64 = f64::NAN;

#[rwt::timeout(secs = LIMIT)]
fn f() -> u8 {
    1
}

fn main() {}
