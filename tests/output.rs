//! The child's stdout and stderr are the caller's: what it prints comes out
//! once, before the caller's later output, and the caller's buffered output
//! is never printed twice. Checked in a helper process whose output the
//! test reads, in every mode (fork, exec, pool).

mod common;

in_every_mode! {
    #[timeout(secs = 5.0)]
    fn child_prints() -> u8 {
        print!("child-partial ");
        println!("child-line");
        eprintln!("child-err");
        print!("child-unterminated");
        1
    }
}

#[test]
fn helper_printer() {
    let Some(call) = helper_fn!("printer", child_prints) else {
        return;
    };
    print!("parent-partial ");
    assert_eq!(call().unwrap(), 1);
    println!();
    println!("parent-after");
}

fn run(role: &str, capture: bool) -> (String, String) {
    let mut cmd = common::helper_command("helper_printer", role);
    if capture {
        // Drop --nocapture: libtest captures the helper test's output.
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| a != "--nocapture")
            .collect();
        cmd = std::process::Command::new(cmd.get_program());
        cmd.args(args).env(common::HELPER_ENV, role);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn once_and_in_order(role: &str) {
    let (stdout, stderr) = run(role, false);
    assert_eq!(stdout.matches("parent-partial").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("child-line").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("child-unterminated").count(), 1, "{stdout}");
    assert_eq!(stderr.matches("child-err").count(), 1, "{stderr}");
    let order: Vec<usize> = [
        "parent-partial ",
        "child-partial child-line",
        "child-unterminated",
        "parent-after",
    ]
    .iter()
    .map(|m| {
        stdout
            .find(m)
            .unwrap_or_else(|| panic!("{m} missing: {stdout}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{stdout}");
}

test_each_mode_role!(
    output_comes_out_once_and_in_order,
    once_and_in_order,
    "printer"
);

#[test]
fn under_libtest_capture_a_fork_childs_print_macros_are_not_shown() {
    // Documented limit: `print!` in a fork child goes to the child's copy of
    // the test harness's capture buffer. `cargo test -- --nocapture` shows it.
    let (stdout, _) = run("printer-fork", true);
    assert!(!stdout.contains("child-line"), "{stdout}");
}

#[test]
fn under_libtest_capture_an_exec_or_pool_childs_output_still_shows() {
    // A fresh process has no capture buffer: it writes to the real stdout.
    for role in ["printer-exec", "printer-pool"] {
        let (stdout, _) = run(role, true);
        assert_eq!(stdout.matches("child-line").count(), 1, "{role}: {stdout}");
    }
}
