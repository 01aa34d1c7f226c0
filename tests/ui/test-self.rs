// A test is a free function, not a method.
struct Fixture;

impl Fixture {
    #[rwt::test(secs = 1)]
    fn check(&self) {}
}

fn main() {}
