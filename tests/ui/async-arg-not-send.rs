use std::rc::Rc;

// The child of an async fork-mode call is forked by rwt's spawner thread:
// what the body captures must be `Send`.
#[rwt::timeout(secs = 1.0)]
async fn count(items: Rc<Vec<u8>>) -> usize {
    items.len()
}

fn main() {}
