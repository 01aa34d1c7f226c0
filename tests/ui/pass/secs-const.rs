const LIMIT: f64 = 0.25;

mod limits {
    pub const LONG: f64 = 60.0;
}

#[rwt::timeout(secs = LIMIT)]
fn quick() -> u8 {
    1
}

#[rwt::timeout(secs = limits::LONG, ntries = 2)]
fn slow() -> u8 {
    2
}

fn main() {
    let _: Result<u8, rwt::Error> = quick();
    let _: Result<u8, rwt::Error> = slow();
}
