// A test's child is always killed: `kill = false` would leave it running.
#[rwt::test(secs = 1, kill = false)]
fn leaves_it() {}

fn main() {}
