//! Options passed through `macro_rules!` fragments arrive in invisible
//! groups; they mean what they would written by hand.

const LIMIT: f64 = 1.0;

macro_rules! timed {
    ($secs:expr, $mode:literal, $kill:literal, $n:literal, $grace:literal, fn $name:ident() -> $ret:ty $body:block) => {
        #[rwt::timeout(secs = $secs, mode = $mode, kill = $kill, ntries = $n, grace = $grace)]
        fn $name() -> $ret $body
    };
}

timed!(LIMIT, "fork", true, 2, 0.5, fn forked() -> u8 { 1 });
timed!(0.5, "exec", false, 1, 0, fn executed() -> u8 { 2 });
timed!(2, "pool", true, 3, 1.5, fn pooled() -> u8 { 3 });

fn main() {
    let _: Result<u8, rwt::Error> = forked();
    let _: Result<u8, rwt::Error> = executed();
    let _: Result<u8, rwt::Error> = pooled();
}
