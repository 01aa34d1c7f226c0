// libtest calls a test as a safe function.
#[rwt::test(secs = 1)]
unsafe fn risky() {}

fn main() {}
