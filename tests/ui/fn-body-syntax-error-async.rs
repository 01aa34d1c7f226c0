// As fn-body-syntax-error.rs, for an async function: its body is wrapped
// for the child without being parsed again, so the error is rustc's alone.
#[rwt::timeout(secs = 1)]
async fn f() -> u8 {
    let x = ;
    1
}

fn main() {}
