struct Handle;

#[rwt::timeout(mode = "exec")]
fn use_it(id: u32, handle: &Handle) -> u32 {
    let _ = handle;
    id
}

fn main() {}
