//! External commands with a deadline: `cargo run --example command`.

use std::process::Command;
use std::time::Instant;

use rwt::{CommandExt, Options};

fn main() {
    println!("1. A command that succeeds:");
    let out = Command::new("echo")
        .arg("hello from echo")
        .output_timeout(5.0);
    match out {
        Ok(out) => println!(
            "   {}, printed {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        Err(e) => println!("   {e}"),
    }

    println!("2. A command that fails is not an rwt error: its status comes back");
    match Command::new("sh")
        .args(["-c", "exit 3"])
        .status_timeout(5.0)
    {
        Ok(status) => println!("   exit code {:?}", status.code()),
        Err(e) => println!("   {e}"),
    }

    println!("3. A command that overruns its deadline, with its child, is killed:");
    let start = Instant::now();
    let options = Options::new().secs(0.5).grace(0.2);
    match Command::new("sh")
        .args(["-c", "sleep 30 & wait"])
        .status_timeout_with(&options)
    {
        Ok(status) => println!("   unexpected: {status:?}"),
        Err(e) => println!("   {e}, back after {:?}", start.elapsed()),
    }
}
