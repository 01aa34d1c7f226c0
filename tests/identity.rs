//! Identity: an exec or pool call runs exactly the function that was
//! called. Functions with the same name and signature (methods of two
//! types, trait impls for two types, nested helpers in two functions, the
//! same name in two modules) never run each other's body; an id that is
//! still ambiguous is a clear error, never a wrong call.

use rwt::timeout;

pub struct Png;
pub struct Jpeg;

impl Png {
    #[timeout(secs = 5.0, mode = "exec")]
    pub fn name_exec() -> String {
        "png".to_owned()
    }

    #[timeout(secs = 5.0, mode = "pool")]
    pub fn name_pool() -> String {
        "png".to_owned()
    }
}

impl Jpeg {
    #[timeout(secs = 5.0, mode = "exec")]
    pub fn name_exec() -> String {
        "jpeg".to_owned()
    }

    #[timeout(secs = 5.0, mode = "pool")]
    pub fn name_pool() -> String {
        "jpeg".to_owned()
    }
}

#[test]
fn methods_of_two_types_run_their_own_bodies() {
    assert_eq!(Png::name_exec().unwrap(), "png");
    assert_eq!(Jpeg::name_exec().unwrap(), "jpeg");
    assert_eq!(Png::name_pool().unwrap(), "png");
    assert_eq!(Jpeg::name_pool().unwrap(), "jpeg");
}

/// A trait implemented for two types: its methods *must* share name and
/// signature. The bodies are the same to the letter; `line!()` tells which
/// one ran.
pub trait Decoder {
    fn site_exec(bytes: Vec<u8>) -> Result<(u32, Vec<u8>), rwt::Error>;
    fn site_pool(bytes: Vec<u8>) -> Result<(u32, Vec<u8>), rwt::Error>;
}

impl Decoder for Png {
    #[timeout(secs = 5.0, mode = "exec")]
    fn site_exec(bytes: Vec<u8>) -> (u32, Vec<u8>) {
        (line!(), bytes)
    }

    #[timeout(secs = 5.0, mode = "pool")]
    fn site_pool(bytes: Vec<u8>) -> (u32, Vec<u8>) {
        (line!(), bytes)
    }
}

impl Decoder for Jpeg {
    #[timeout(secs = 5.0, mode = "exec")]
    fn site_exec(bytes: Vec<u8>) -> (u32, Vec<u8>) {
        (line!(), bytes)
    }

    #[timeout(secs = 5.0, mode = "pool")]
    fn site_pool(bytes: Vec<u8>) -> (u32, Vec<u8>) {
        (line!(), bytes)
    }
}

#[test]
fn trait_impls_for_two_types_run_their_own_bodies() {
    let (png_exec, args) = Png::site_exec(vec![9]).unwrap();
    assert_eq!(args, [9]);
    let (jpeg_exec, _) = Jpeg::site_exec(vec![9]).unwrap();
    let (png_pool, _) = Png::site_pool(vec![9]).unwrap();
    let (jpeg_pool, _) = Jpeg::site_pool(vec![9]).unwrap();
    let lines = [png_exec, png_pool, jpeg_exec, jpeg_pool];
    let mut unique = lines.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 4, "bodies that ran, by line: {lines:?}");
    assert!(png_exec < png_pool && png_pool < jpeg_exec && jpeg_exec < jpeg_pool);
}

fn first_exec() -> u32 {
    #[timeout(secs = 5.0, mode = "exec")]
    fn helper() -> u32 {
        1
    }
    helper().unwrap()
}

fn second_exec() -> u32 {
    #[timeout(secs = 5.0, mode = "exec")]
    fn helper() -> u32 {
        2
    }
    helper().unwrap()
}

fn first_pool() -> u32 {
    #[timeout(secs = 5.0, mode = "pool")]
    fn helper() -> u32 {
        1
    }
    helper().unwrap()
}

fn second_pool() -> u32 {
    #[timeout(secs = 5.0, mode = "pool")]
    fn helper() -> u32 {
        2
    }
    helper().unwrap()
}

#[test]
fn nested_helpers_of_two_functions_run_their_own_bodies() {
    assert_eq!(first_exec(), 1);
    assert_eq!(second_exec(), 2);
    assert_eq!(first_pool(), 1);
    assert_eq!(second_pool(), 2);
}

mod left {
    use rwt::timeout;

    #[timeout(secs = 5.0, mode = "exec")]
    pub fn side_exec() -> String {
        "left".to_owned()
    }

    #[timeout(secs = 5.0, mode = "pool")]
    pub fn side_pool() -> String {
        "left".to_owned()
    }
}

mod right {
    use rwt::timeout;

    #[timeout(secs = 5.0, mode = "exec")]
    pub fn side_exec() -> String {
        "right".to_owned()
    }

    #[timeout(secs = 5.0, mode = "pool")]
    pub fn side_pool() -> String {
        "right".to_owned()
    }
}

#[test]
fn the_same_name_in_two_modules_runs_its_own_body() {
    assert_eq!(left::side_exec().unwrap(), "left");
    assert_eq!(right::side_exec().unwrap(), "right");
    assert_eq!(left::side_pool().unwrap(), "left");
    assert_eq!(right::side_pool().unwrap(), "right");
}

/// One `macro_rules!` invocation that writes the same method, token for
/// token, into two impl blocks: nothing the attribute sees tells them
/// apart (same text, same module, same place in the source), so neither
/// may run.
macro_rules! twins {
    ($mode:literal, $($ty:ident),*) => {$(
        pub struct $ty;
        impl $ty {
            #[timeout(secs = 5.0, mode = $mode)]
            pub fn number() -> u32 {
                line!()
            }
        }
    )*};
}

mod twins_exec {
    use rwt::timeout;
    twins!("exec", Left, Right);
}

mod twins_pool {
    use rwt::timeout;
    twins!("pool", Left, Right);
}

fn expect_ambiguous(result: Result<u32, rwt::Error>) {
    match result {
        Err(rwt::Error::Spawn { source, .. }) => {
            let text = source.to_string();
            assert!(text.contains("ambiguous"), "{text}");
        }
        other => panic!("want a refusal to run an ambiguous function, got {other:?}"),
    }
}

#[test]
fn indistinguishable_twins_are_refused_not_mixed_up() {
    expect_ambiguous(twins_exec::Left::number());
    expect_ambiguous(twins_exec::Right::number());
    expect_ambiguous(twins_pool::Left::number());
    expect_ambiguous(twins_pool::Right::number());
}
