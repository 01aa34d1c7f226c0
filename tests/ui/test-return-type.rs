// A test returns `()` or `Result<(), E>`.
#[rwt::test(secs = 1)]
fn answer() -> u32 {
    42
}

#[rwt::test(secs = 1)]
fn some_value() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
