#[rwt::timeout]
async fn f() -> u8 {
    1
}

fn main() {}
