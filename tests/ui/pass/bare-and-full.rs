#[rwt::timeout]
fn bare() -> u8 {
    1
}

#[rwt::timeout(mode = "fork", grace = 0.5, kill = false, ntries = 3, secs = 1.5)]
fn every_option_any_order(x: u32) -> u32 {
    x
}

#[rwt::timeout(secs = 2)]
fn integer_secs() {}

fn main() {
    let _: Result<u8, rwt::Error> = bare();
    let _: Result<u32, rwt::Error> = every_option_any_order(1);
    let _: Result<(), rwt::Error> = integer_secs();
}
