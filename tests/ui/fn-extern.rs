#[rwt::timeout]
extern "C" fn f() -> u8 {
    1
}

fn main() {}
