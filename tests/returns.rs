//! Values come back, and every shape of function the attribute accepts keeps
//! working: methods, associated and generic functions, reference arguments,
//! unit and `Result` returns, `secs` from a `const`.

use std::sync::atomic::{AtomicU32, Ordering};

use rwt::timeout;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[timeout(secs = 5.0)]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[test]
fn a_plain_function_returns_its_value() {
    assert_eq!(add(2, 3).unwrap(), 5);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Report {
    name: String,
    sizes: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    note: Option<String>,
}

#[timeout(secs = 5.0)]
fn report(name: &str, sizes: &[u32], extra: &Report) -> Report {
    Report {
        name: format!("{name}+{}", extra.name),
        sizes: sizes.iter().map(|s| s * 2).collect(),
        note: None,
    }
}

#[test]
fn structs_and_reference_arguments() {
    let extra = Report {
        name: "x".into(),
        sizes: vec![],
        note: Some("unused".into()),
    };
    let r = report("a", &[1, 2, 3], &extra).unwrap();
    assert_eq!(
        r,
        Report {
            name: "a+x".into(),
            sizes: vec![2, 4, 6],
            note: None
        }
    );
}

static TOUCHED: AtomicU32 = AtomicU32::new(0);

/// Unit return, and the child's writes to memory stay in the child.
#[timeout(secs = 5.0)]
fn touch() {
    TOUCHED.store(99, Ordering::SeqCst);
}

#[test]
fn unit_return_and_the_child_has_its_own_memory() {
    let r: Result<(), rwt::Error> = touch();
    r.unwrap();
    assert_eq!(TOUCHED.load(Ordering::SeqCst), 0);
}

static SEEN: AtomicU32 = AtomicU32::new(0);

#[timeout(secs = 5.0)]
fn read_seen() -> u32 {
    SEEN.load(Ordering::SeqCst)
}

#[test]
fn the_child_sees_the_callers_state_as_of_the_call() {
    SEEN.store(7, Ordering::SeqCst);
    assert_eq!(read_seen().unwrap(), 7);
}

#[timeout]
fn whoami() -> u32 {
    std::process::id()
}

#[test]
fn a_bare_attribute_runs_in_another_process() {
    assert_ne!(whoami().unwrap(), std::process::id());
}

#[timeout]
fn bare_and_slow() -> u8 {
    std::thread::sleep(std::time::Duration::from_secs(10));
    0
}

#[test]
fn a_bare_attribute_means_one_second_one_attempt_kill() {
    let start = std::time::Instant::now();
    match bare_and_slow() {
        Err(rwt::Error::Timeout {
            secs,
            attempts,
            killed,
            ..
        }) => assert_eq!((secs, attempts, killed), (1.0, 1, true)),
        other => panic!("expected the default timeout, got {other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_millis(1500));
}

/// Neither `Serialize` nor `Deserialize`: fork mode never copies arguments.
struct Plain {
    items: Vec<u32>,
    lock: std::sync::Mutex<u32>,
}

#[timeout(secs = 5.0)]
fn uses_plain(plain: &Plain, file: std::fs::File) -> u32 {
    let seen = *plain.lock.lock().unwrap();
    let len = file.metadata().map(|m| m.len()).unwrap_or(0) as u32;
    plain.items.iter().sum::<u32>() + seen + len
}

#[test]
fn fork_mode_takes_arguments_that_cannot_be_serialized() {
    let plain = Plain {
        items: vec![1, 2, 3],
        lock: std::sync::Mutex::new(10),
    };
    let file = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(uses_plain(&plain, file).unwrap(), 16);
}

struct Counter {
    base: u32,
}

impl Counter {
    const SECS: f64 = 2.5;

    #[timeout(secs = Self::SECS)]
    fn plus(&self, x: u32) -> u32 {
        self.base + x
    }

    #[timeout(secs = 5.0)]
    fn into_total(self, x: u32) -> u32 {
        self.base * x
    }

    #[timeout(secs = 5.0)]
    fn default_base() -> u32 {
        40
    }
}

#[test]
fn methods_and_associated_functions() {
    let c = Counter { base: 10 };
    assert_eq!(c.plus(5).unwrap(), 15);
    assert_eq!(Counter::default_base().unwrap(), 40);
    assert_eq!(c.into_total(3).unwrap(), 30);
}

trait Measure {
    fn measure(&self, scale: u32) -> Result<u32, rwt::Error>;
}

impl Measure for Counter {
    #[timeout(secs = 5.0)]
    fn measure(&self, scale: u32) -> u32 {
        self.base * scale
    }
}

#[test]
fn trait_impl_methods() {
    let c = Counter { base: 4 };
    assert_eq!(c.measure(5).unwrap(), 20);
}

#[timeout(secs = 5.0)]
fn pair<T>(x: T) -> (T, T)
where
    T: Clone + Serialize + DeserializeOwned,
{
    (x.clone(), x)
}

#[timeout(secs = 5.0)]
fn repeat<const N: usize>(x: u8) -> Vec<u8> {
    vec![x; N]
}

#[test]
fn generic_and_const_generic_functions() {
    assert_eq!(pair("a".to_string()).unwrap(), ("a".into(), "a".into()));
    assert_eq!(pair(1.5f64).unwrap(), (1.5, 1.5));
    assert_eq!(repeat::<3>(7).unwrap(), vec![7, 7, 7]);
}

const QUICK: f64 = 0.75;

#[timeout(secs = QUICK)]
fn quick() -> String {
    "quick".into()
}

#[timeout(secs = QUICK)]
fn too_slow_for_quick() -> u8 {
    std::thread::sleep(std::time::Duration::from_secs(5));
    0
}

#[test]
fn secs_from_a_const_is_the_deadline() {
    assert_eq!(quick().unwrap(), "quick");
    match too_slow_for_quick() {
        Err(rwt::Error::Timeout { secs, .. }) => assert_eq!(secs, QUICK),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[timeout(secs = 5.0)]
fn parse_number(text: String) -> Result<u32, String> {
    text.parse().map_err(|e| format!("{text:?}: {e}"))
}

/// An alias of `Result`, as `io::Result` is.
type Outcome<T> = std::result::Result<T, String>;

#[timeout(secs = 5.0)]
fn aliased(ok: bool) -> Outcome<u8> {
    if ok {
        Ok(1)
    } else {
        Err("no".into())
    }
}

#[test]
fn a_result_is_a_value_not_an_rwt_error() {
    assert_eq!(parse_number("12".into()).unwrap(), Ok(12));
    let err = parse_number("x".into()).unwrap().unwrap_err();
    assert!(err.starts_with("\"x\""), "{err}");
}

#[test]
fn early_return_and_question_mark_work_in_the_body() {
    #[timeout(secs = 5.0)]
    fn first_even(v: Vec<u32>) -> Result<u32, String> {
        for x in &v {
            if x % 2 == 0 {
                return Ok(*x);
            }
        }
        let n: u32 = "none".parse().map_err(|_| "no even number".to_string())?;
        Ok(n)
    }
    assert_eq!(first_even(vec![1, 3, 4]).unwrap(), Ok(4));
    assert_eq!(
        first_even(vec![1]).unwrap(),
        Err("no even number".to_string())
    );
}

mod visible {
    /// Documented, public, and still callable from outside its module.
    #[rwt::timeout(secs = 5.0)]
    #[inline]
    pub fn doubled(x: i64) -> i64 {
        x * 2
    }
}

#[test]
fn visibility_and_other_attributes_are_kept() {
    assert_eq!(visible::doubled(-4).unwrap(), -8);
}

#[test]
fn a_result_alias_is_a_result_too() {
    assert_eq!(aliased(true).unwrap(), Ok(1));
    assert_eq!(aliased(false).unwrap(), Err("no".to_string()));
}
