#[rwt::timeout]
unsafe extern "C" fn f(n: i32, mut args: ...) -> i32 {
    n
}

fn main() {}
