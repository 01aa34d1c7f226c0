//! A panic in the child comes back as `Error::Panicked` with its message and
//! location, whatever the payload.

use rwt::timeout;

#[timeout(secs = 5.0)]
fn index(v: Vec<u8>, i: usize) -> u8 {
    v[i]
}
/// The line of `v[i]` above.
const INDEX_LINE: u32 = line!() - 3;

#[test]
fn a_str_panic_with_its_location() {
    match index(vec![1, 2, 3], 7) {
        Err(rwt::Error::Panicked {
            function,
            message,
            attempts,
        }) => {
            assert_eq!(function, "index");
            assert_eq!(attempts, 1);
            assert_eq!(
                message,
                format!(
                    // Column 6, as rustc reports it without rwt too.
                    "index out of bounds: the len is 3 but the index is 7 \
                     (tests/panic.rs:{INDEX_LINE}:6)"
                )
            );
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[timeout(secs = 5.0)]
fn formatted(n: u32) -> u32 {
    panic!("bad value {n}")
}

#[test]
fn a_formatted_string_panic() {
    let e = formatted(42).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("function `formatted` panicked: bad value 42 (tests/panic.rs:"),
        "{e}"
    );
}

#[timeout(secs = 5.0)]
fn odd_payload() -> u32 {
    std::panic::panic_any(42u32)
}

#[test]
fn a_non_string_payload_is_named_as_such() {
    match odd_payload() {
        Err(rwt::Error::Panicked { message, .. }) => {
            assert!(
                message.starts_with("panic payload of a non-string type (tests/panic.rs:"),
                "{message}"
            );
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[timeout(secs = 5.0)]
fn recovers() -> u32 {
    let caught = std::panic::catch_unwind(|| -> u32 { panic!("inner") });
    if caught.is_err() {
        7
    } else {
        0
    }
}

#[test]
fn a_panic_the_function_catches_itself_is_not_an_error() {
    assert_eq!(recovers().unwrap(), 7);
}

#[timeout(secs = 5.0, ntries = 2)]
fn always_panics() -> u32 {
    panic!("again")
}

#[test]
fn after_retries_the_last_panic_with_the_attempt_count() {
    let e = always_panics().unwrap_err();
    assert!(
        matches!(e, rwt::Error::Panicked { attempts: 2, .. }),
        "{e:?}"
    );
    assert!(e.to_string().ends_with(", after 2 attempts"), "{e}");
}
