#[rwt::timeout(mode = "exec")]
fn first<T: Clone>(items: Vec<T>) -> usize {
    items.len()
}

fn main() {}
