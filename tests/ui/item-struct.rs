#[rwt::timeout]
struct S;

fn main() {}
