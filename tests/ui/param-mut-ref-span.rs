pub struct Buffers;

#[rwt::timeout]
fn fill(
    first: u8,
    second: &'static mut Buffers,
) -> u8 {
    let _ = second;
    first
}

fn main() {}
