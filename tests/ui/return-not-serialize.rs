struct Handle;

#[rwt::timeout]
fn open() -> Handle {
    Handle
}

fn main() {}
