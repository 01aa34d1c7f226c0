// `#[rwt::test]` goes on a function.
#[rwt::test(secs = 1)]
struct NotATest;

fn main() {}
