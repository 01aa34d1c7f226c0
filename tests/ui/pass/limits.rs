//! Every form of `memory` and `cpu`, in every mode, with the other options.

#[rwt::timeout(memory = "512 MiB")]
fn fork_memory() -> u8 {
    1
}

#[rwt::timeout(cpu = 2)]
fn fork_cpu_whole() -> u8 {
    1
}

#[rwt::timeout(secs = 1.5, ntries = 2, memory = "1.5 GiB", cpu = 0.25, mode = "exec")]
fn exec_both(x: u32) -> u32 {
    x
}

#[rwt::timeout(mode = "pool", memory = "800KiB", cpu = 1e-3)]
fn pool_both() -> u8 {
    1
}

#[rwt::timeout(memory = "64 MB", cpu = 5.0)]
async fn async_both() -> u8 {
    1
}

fn main() {
    let _ = (fork_memory, fork_cpu_whole, exec_both, pool_both, async_both);
}
