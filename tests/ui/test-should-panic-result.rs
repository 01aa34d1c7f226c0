// As in libtest: `#[should_panic]` needs a test that returns `()`.
#[rwt::test(secs = 1)]
#[should_panic]
fn fallible() -> Result<(), String> {
    Err("no".into())
}

fn main() {}
