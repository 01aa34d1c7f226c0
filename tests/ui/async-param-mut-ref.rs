// As for a sync function: changes made in the child never come back.
#[rwt::timeout(secs = 1.0)]
async fn fill(buf: &mut Vec<u8>) -> usize {
    buf.push(1);
    buf.len()
}

fn main() {}
