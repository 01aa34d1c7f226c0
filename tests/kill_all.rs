//! `rwt::kill_all()`: every call in flight, in every mode and for
//! commands, returns `Error::Cancelled` at once with its child killed and
//! reaped; orphans of `kill = false` are left alone; calls made afterwards
//! run normally. One test alone in its binary: `kill_all` is process-wide.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{alive, read_pid, reaped, wait_until, KillOnDrop, Scratch};
use rwt::{CommandExt, Error};

in_every_mode! {
    #[timeout(secs = 30.0)]
    fn lingers(pid_file: String) -> u8 {
        common::note_pid_and_sleep(&pid_file, Duration::from_secs(30));
        0
    }

    #[timeout(secs = 0.1, kill = false)]
    fn overstays(pid_file: String) -> u8 {
        common::note_pid_and_sleep(&pid_file, Duration::from_millis(1500));
        0
    }

    #[timeout(secs = 5.0)]
    fn fine(i: u32) -> u32 {
        i
    }
}

/// Async calls, cancelled the same way.
#[rwt::timeout(secs = 30.0)]
async fn lingers_async(pid_file: String) -> u8 {
    common::note_pid_and_sleep(&pid_file, Duration::from_secs(30));
    0
}

#[rwt::timeout(secs = 30.0, mode = "exec")]
async fn lingers_async_exec(pid_file: String) -> u8 {
    lingers_body(&pid_file)
}

#[rwt::timeout(secs = 30.0, mode = "pool")]
async fn lingers_async_pool(pid_file: String) -> u8 {
    lingers_body(&pid_file)
}

fn lingers_body(pid_file: &str) -> u8 {
    common::note_pid_and_sleep(pid_file, Duration::from_secs(30));
    0
}

#[test]
fn kill_all_cancels_every_call_in_flight_and_nothing_else() {
    // An orphan made before: kill_all leaves it alone.
    let orphan_file = Scratch::new("orphan");
    assert!(fork::overstays(orphan_file.arg()).unwrap_err().is_timeout());
    let orphan = read_pid(orphan_file.path(), Duration::ZERO).unwrap();
    let mut cleanup = KillOnDrop(vec![orphan]);

    // Calls in flight: two per mode, three async ones (on tokio and on
    // another executor), and a command.
    let files: Vec<Scratch> = (0..9).map(|_| Scratch::new("in-flight")).collect();
    let calls: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let path = f.arg();
            std::thread::spawn(move || match i {
                0 | 3 => fork::lingers(path),
                1 | 4 => exec::lingers(path),
                2 | 5 => pool::lingers(path),
                6 => common::on_tokio(lingers_async(path)),
                7 => common::park_on(lingers_async_exec(path)),
                _ => common::on_tokio(lingers_async_pool(path)),
            })
        })
        .collect();
    let command = std::thread::spawn(|| Command::new("sleep").arg("30").status_timeout(30.0));
    let children: Vec<u32> = files
        .iter()
        .map(|f| read_pid(f.path(), Duration::from_secs(10)).expect("call started"))
        .collect();
    cleanup.0.extend(&children);
    std::thread::sleep(Duration::from_millis(200)); // the command starts too

    let start = Instant::now();
    rwt::kill_all();
    for call in calls {
        match call.join().unwrap() {
            Err(e @ Error::Cancelled { .. }) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("function `lingers") && text.ends_with("` was cancelled"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    match command.join().unwrap() {
        Err(Error::Cancelled { function, .. }) => assert_eq!(function, "sleep 30"),
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    for &pid in &children {
        assert!(reaped(pid), "{pid} was not killed and reaped");
    }
    assert!(alive(orphan), "kill_all killed an orphan");

    // Calls made afterwards are not affected.
    assert_eq!(fork::fine(1).unwrap(), 1);
    assert_eq!(exec::fine(2).unwrap(), 2);
    assert_eq!(pool::fine(3).unwrap(), 3);
    assert!(wait_until(Duration::from_secs(3), || reaped(orphan)));
}
