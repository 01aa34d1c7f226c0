//! The child's stdout and stderr are the caller's: what it prints comes out
//! once, before the caller's later output, and the caller's buffered output
//! is never printed twice. Checked in a helper process whose output the
//! test reads.

mod common;

use rwt::timeout;

#[timeout(secs = 5.0)]
fn child_prints() -> u8 {
    print!("child-partial ");
    println!("child-line");
    eprintln!("child-err");
    print!("child-unterminated");
    1
}

#[test]
fn helper_printer() {
    if !common::is_helper("printer") {
        return;
    }
    print!("parent-partial ");
    assert_eq!(child_prints().unwrap(), 1);
    println!();
    println!("parent-after");
}

fn run(capture: bool) -> (String, String) {
    let mut cmd = common::helper_command("helper_printer", "printer");
    if capture {
        // Drop --nocapture: libtest captures the helper test's output.
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| a != "--nocapture")
            .collect();
        cmd = std::process::Command::new(cmd.get_program());
        cmd.args(args).env(common::HELPER_ENV, "printer");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn output_comes_out_once_and_in_order() {
    let (stdout, stderr) = run(false);
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

#[test]
fn under_libtest_capture_the_childs_print_macros_are_not_shown() {
    // Documented limit: `print!` in a child goes to the child's copy of the
    // test harness's capture buffer. `cargo test -- --nocapture` shows it.
    let (stdout, _) = run(true);
    assert!(!stdout.contains("child-line"), "{stdout}");
}
