//! A panic in the child comes back as `Error::Panicked` with its message and
//! location, whatever the payload. In every mode (fork, exec, pool).

mod common;

in_every_mode! {
    #[timeout(secs = 5.0)]
    fn index(v: Vec<u8>, i: usize) -> u8 {
        v[i]
    }

    #[timeout(secs = 5.0)]
    fn formatted(n: u32) -> u32 {
        panic!("bad value {n}")
    }

    #[timeout(secs = 5.0)]
    fn odd_payload() -> u32 {
        std::panic::panic_any(42u32)
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

    #[timeout(secs = 5.0, ntries = 2)]
    fn always_panics() -> u32 {
        panic!("again")
    }
}

/// The line of `v[i]` in `index` above, read from this file.
fn index_line() -> usize {
    let source = include_str!("panic.rs");
    1 + source.lines().position(|l| l.trim() == "v[i]").unwrap()
}

test_in_every_mode! {
    fn a_str_panic_with_its_location(m) {
        match m::index(vec![1, 2, 3], 7) {
            Err(rwt::Error::Panicked { function, message, attempts, .. }) => {
                assert_eq!(function, "index");
                assert_eq!(attempts, 1);
                // The column is the one rustc reports without rwt too.
                let line = index_line();
                assert_eq!(
                    message,
                    format!(
                        "index out of bounds: the len is 3 but the index is 7 \
                         (tests/panic.rs:{line}:10)"
                    )
                );
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
    }

    fn a_formatted_string_panic(m) {
        let e = m::formatted(42).unwrap_err();
        assert!(
            e.to_string().starts_with("function `formatted` panicked: bad value 42 (tests/panic.rs:"),
            "{e}"
        );
    }

    fn a_non_string_payload_is_named_as_such(m) {
        match m::odd_payload() {
            Err(rwt::Error::Panicked { message, .. }) => assert!(
                message.starts_with("panic payload of a non-string type (tests/panic.rs:"),
                "{message}"
            ),
            other => panic!("expected Panicked, got {other:?}"),
        }
    }

    fn a_panic_the_function_catches_itself_is_not_an_error(m) {
        assert_eq!(m::recovers().unwrap(), 7);
    }

    fn after_retries_the_last_panic_with_the_attempt_count(m) {
        let e = m::always_panics().unwrap_err();
        assert!(matches!(e, rwt::Error::Panicked { attempts: 2, .. }), "{e:?}");
        assert!(e.to_string().ends_with(", after 2 attempts"), "{e}");
    }
}
