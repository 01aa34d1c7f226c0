//! What exec mode accepts: owned and borrowed arguments (sent as
//! MessagePack), patterns, unit returns, `Result` returns, associated
//! functions without `self`, lifetimes.

#[derive(serde::Serialize, serde::Deserialize)]
struct Config {
    name: String,
}

#[rwt::timeout(secs = 1.0, mode = "exec")]
fn count(text: &str, list: &[u32], config: &Config, (a, b): (u8, u8), mut n: u64) -> u64 {
    n += text.len() as u64 + list.len() as u64 + config.name.len() as u64;
    n + u64::from(a) + u64::from(b)
}

#[rwt::timeout(mode = "exec", ntries = 2)]
fn checked<'a>(text: &'a str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("{text:?} is not a number"))
}

#[rwt::timeout(mode = "exec")]
fn nothing() {}

struct Tool;

impl Tool {
    #[rwt::timeout(mode = "exec", kill = false, grace = 0.5)]
    fn version() -> String {
        "1.0".into()
    }
}

fn main() {
    more();
    pool_too();
    let c = Config { name: String::new() };
    let _: Result<u64, rwt::Error> = count("a", &[1], &c, (1, 2), 0);
    let _: Result<Result<u32, String>, rwt::Error> = checked("1");
    let _: Result<(), rwt::Error> = nothing();
    let _: Result<String, rwt::Error> = Tool::version();
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Named<'a> {
    label: std::borrow::Cow<'a, str>,
}

#[rwt::timeout(mode = "exec")]
fn labelled<'a>(named: &'a Named<'a>, extra: Named<'static>) -> usize {
    named.label.len() + extra.label.len()
}

fn more() {
    let n = Named { label: "x".into() };
    let _: Result<usize, rwt::Error> = labelled(&n, Named { label: "y".into() });
}

#[rwt::timeout(secs = 0.5, mode = "pool", ntries = 2)]
fn pooled(text: &str, n: u32) -> Result<String, String> {
    Ok(format!("{text}{n}"))
}

fn pool_too() {
    let _: Result<Result<String, String>, rwt::Error> = pooled("a", 1);
}
