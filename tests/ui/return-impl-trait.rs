#[rwt::timeout]
fn number() -> impl serde::Serialize {
    1u8
}

fn main() {}
