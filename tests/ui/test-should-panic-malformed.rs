// `#[should_panic]` takes `expected = "..."` and nothing else.
#[rwt::test(secs = 1)]
#[should_panic(message = "boom")]
fn misspelt() {
    panic!("boom");
}

fn main() {}
