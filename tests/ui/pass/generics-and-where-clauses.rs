use serde::de::DeserializeOwned;
use serde::Serialize;

#[rwt::timeout(secs = 2.0)]
fn first<T: Serialize + DeserializeOwned + Clone>(items: Vec<T>) -> Option<T> {
    items.first().cloned()
}

#[rwt::timeout]
fn pair<A, B>(a: A, b: B) -> (A, B)
where
    A: Serialize + DeserializeOwned,
    B: Serialize + DeserializeOwned,
{
    (a, b)
}

#[rwt::timeout]
fn zeros<const N: usize>() -> Vec<u8> {
    vec![0; N]
}

#[rwt::timeout]
fn longest<'a>(a: &'a str, b: &'a str) -> String {
    if a.len() >= b.len() { a.into() } else { b.into() }
}

fn main() {
    let _: Result<Option<u8>, rwt::Error> = first(vec![1u8]);
    let _: Result<(u8, String), rwt::Error> = pair(1u8, String::new());
    let _: Result<Vec<u8>, rwt::Error> = zeros::<4>();
    let _: Result<String, rwt::Error> = longest("a", "bc");
}
