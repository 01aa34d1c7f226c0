#[rwt::timeout]
fn name() -> &'static str {
    "x"
}

fn main() {}
