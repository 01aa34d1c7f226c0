pub struct Wrapper<T>(T);

#[rwt::timeout(secs = 1.0)]
fn wrapped<T>(x: T)
    -> Wrapper<T>
where
    T: Clone,
{
    Wrapper(x)
}

fn main() {}
