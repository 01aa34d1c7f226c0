// A fresh process finds the function by id: one body per function, so no
// type parameters, async or not.
#[rwt::timeout(secs = 1.0, mode = "pool")]
async fn echo<T: serde::Serialize + serde::de::DeserializeOwned>(value: T) -> T {
    value
}

fn main() {}
