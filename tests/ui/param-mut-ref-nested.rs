#[rwt::timeout]
fn fill(bufs: Option<&mut Vec<u8>>) {
    let _ = bufs;
}

fn main() {}
