// The options `#[timeout]` would refuse are refused here too, all at once.
#[rwt::test(secs = 0, ntries = 0, memory = "12 mib", sec = 2)]
fn wrong() {}

fn main() {}
