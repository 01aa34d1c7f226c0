#[rwt::timeout(ntries = 0)]
const fn f(x: &mut u8) -> u8 {
    *x
}

fn main() {}
