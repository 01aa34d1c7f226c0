#[derive(serde::Serialize, serde::Deserialize)]
struct Config {
    name: String,
}

#[rwt::timeout]
fn by_reference(text: &str, list: &[u32], config: &Config, pair: (u8, &u16)) -> usize {
    text.len() + list.len() + config.name.len() + usize::from(pair.0) + usize::from(*pair.1)
}

#[rwt::timeout]
fn unit(mut counter: u32) {
    counter += 1;
    let _ = counter;
}

#[rwt::timeout(ntries = 2)]
fn nested(x: u8) -> Result<Result<u8, String>, String> {
    if x == 0 { Err("zero".into()) } else { Ok(Ok(x)) }
}

#[rwt::timeout]
fn destructured((a, b): (u8, u8), Config { name }: Config) -> String {
    format!("{a}{b}{name}")
}

fn main() {
    let c = Config { name: "n".into() };
    let _: Result<usize, rwt::Error> = by_reference("a", &[1], &c, (1, &2));
    let _: Result<(), rwt::Error> = unit(0);
    let _: Result<Result<Result<u8, String>, String>, rwt::Error> = nested(1);
    let _: Result<String, rwt::Error> = destructured((1, 2), c);
}
