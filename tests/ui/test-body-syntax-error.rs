// A syntax error in an `#[rwt::test]`'s body is rustc's own error, at the
// user's token, not a panic of the attribute.
#[rwt::test(secs = 1)]
fn t() {
    let x = ;
}

fn main() {}
