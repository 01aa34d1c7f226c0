// `#[rwt::test]` is the `#[test]`: a second one would be a second test.
#[rwt::test(secs = 1)]
#[test]
fn twice() {}

fn main() {}
