// A syntax error in the body is rustc's to report: the attribute adds no
// error of its own ("goes on a function") on top.
#[rwt::timeout(secs = 1)]
fn f() -> u8 {
    let x = ;
    1
}

fn main() {}
