#[rwt::timeout(secs = -1.0)]
fn f(x: u8) -> u8 {
    x
}

fn caller() -> Result<u8, rwt::Error> {
    let a = f(1)?;
    match f(2) {
        Ok(b) => Ok(a + b),
        Err(e) if e.is_timeout() => Ok(0),
        Err(e) => Err(e),
    }
}

fn main() {}
