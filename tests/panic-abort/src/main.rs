//! Built with `panic = "abort"`: the child's panic hook must send the
//! panic frame before the abort, so the caller sees `Panicked`, not a
//! `Crashed { signal: SIGABRT }`.

#[rwt::timeout(secs = 5.0)]
fn boom_fork() -> u8 {
    panic!("boom")
}

#[rwt::timeout(secs = 5.0, mode = "exec")]
fn boom_exec() -> u8 {
    panic!("boom")
}

fn main() {
    for (mode, result) in [("fork", boom_fork()), ("exec", boom_exec())] {
        match result {
            Err(rwt::Error::Panicked { message, .. }) => println!("{mode}: Panicked: {message}"),
            other => println!("{mode}: {other:?}"),
        }
    }
}
