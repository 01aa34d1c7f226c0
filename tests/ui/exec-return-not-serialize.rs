struct Handle;

#[rwt::timeout(mode = "exec")]
fn open(path: String) -> Handle {
    let _ = path;
    Handle
}

fn main() {}
