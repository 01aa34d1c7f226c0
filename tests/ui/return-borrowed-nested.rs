#[rwt::timeout]
fn names() -> Vec<(u8, &'static str)> {
    vec![(1, "x")]
}

fn main() {}
