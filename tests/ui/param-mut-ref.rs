#[rwt::timeout]
fn fill(buf: &mut Vec<u8>) {
    buf.push(1);
}

fn main() {}
