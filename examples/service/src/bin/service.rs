//! The service: `cargo run --release --manifest-path examples/service/Cargo.toml --bin service`.
//! Binds 127.0.0.1 (port 0 unless `--port N`), prints its address (and
//! writes it to `--addr-file PATH`), and on
//! SIGTERM or Ctrl-C stops accepting, cancels the calls in flight (each is
//! answered 503), and exits once every connection has its answer.

#[tokio::main]
async fn main() {
    let mut port = 0u16;
    let mut addr_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--addr-file" => addr_file = Some(args.next().expect("--addr-file PATH").into()),
            other => panic!("unknown argument {other:?}; expected --port N or --addr-file PATH"),
        }
    }
    rwt_service_example::serve(port, addr_file).await;
}
