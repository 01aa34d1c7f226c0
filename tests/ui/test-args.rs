// A test takes no arguments: libtest calls it with none.
#[rwt::test(secs = 1)]
fn with_input(path: String) {
    let _ = path;
}

fn main() {}
