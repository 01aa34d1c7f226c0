//! The shapes of the core: a bare attribute, all options, a method.

#[rwt::timeout]
fn bare() -> u8 {
    1
}

#[rwt::timeout(secs = 1.5, ntries = 3, kill = false, grace = 0.5, mode = "fork")]
fn everything(x: u32) -> u32 {
    x
}

struct S;

impl S {
    #[rwt::timeout(secs = 2)]
    fn method(&self) -> String {
        String::new()
    }
}

fn main() {
    let _: Result<u8, rwt::Error> = bare();
    let _: Result<u32, rwt::Error> = everything(1);
    let _: Result<String, rwt::Error> = S.method();
}
