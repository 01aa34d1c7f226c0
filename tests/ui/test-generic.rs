// libtest calls one instance of a test: nothing would pick `T`.
#[rwt::test(secs = 1, mode = "fork")]
fn generic<T: Default>() {
    let _ = T::default();
}

fn main() {}
