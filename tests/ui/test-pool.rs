// A pool worker serves many tests: its output and leftovers would not be
// one test's.
#[rwt::test(secs = 1, mode = "pool")]
fn pooled() {}

fn main() {}
