//! A small HTTP service that must answer every request while some requests
//! are poison. `POST /analyze` takes a JSON document and answers a summary
//! of it (how many values, how deep, the sum of its numbers), computed in
//! an rwt pool worker with a deadline and a memory limit. A query parameter
//! (`?hostile=loop`, `alloc`, `stack`, `abort`, `panic`, `flood`) makes the
//! worker misbehave the way hostile input makes real parsers misbehave, so
//! that the load generator (`src/bin/load.rs`) can check each answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

/// The deadline of one analysis, in seconds. Its other budgets are in the
/// attribute on [`analyze`]: 64 MiB of memory and 20 ms of CPU (the largest
/// benign document here needs well under 1 ms).
pub const DEADLINE_SECS: f64 = 0.5;

/// What the service answers for a document.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Summary {
    /// Values in the document, containers included.
    pub values: u64,
    /// Deepest nesting (a scalar alone is 1).
    pub depth: u32,
    /// Sum of its numbers.
    pub sum: f64,
    /// Bytes of its strings.
    pub text_bytes: u64,
}

/// How a request asks the worker to misbehave (a test hook: real hostile
/// input does the same things without asking).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Hostile {
    /// Spin forever: a decoder that never ends.
    Loop,
    /// Allocate without end: a header that declares gigabytes.
    Alloc,
    /// Recurse without end: nesting deeper than the stack.
    Stack,
    /// Abort: a C library's assertion.
    Abort,
    /// Panic: a bug in the parser.
    Panic,
    /// Write 1 MiB to stdout, then answer normally: a chatty library.
    Flood,
}

impl Hostile {
    /// Every kind, for the load generator.
    pub const ALL: [Hostile; 6] = [
        Hostile::Loop,
        Hostile::Alloc,
        Hostile::Stack,
        Hostile::Abort,
        Hostile::Panic,
        Hostile::Flood,
    ];

    /// Its name in the query string.
    pub fn name(self) -> &'static str {
        match self {
            Hostile::Loop => "loop",
            Hostile::Alloc => "alloc",
            Hostile::Stack => "stack",
            Hostile::Abort => "abort",
            Hostile::Panic => "panic",
            Hostile::Flood => "flood",
        }
    }

    /// The answers the service may give it, as status and `error` (`None`:
    /// the document's summary, as for a benign request). A spinning worker
    /// is stopped by its CPU budget or by the deadline, whichever comes
    /// first on a busy machine: both are right.
    pub fn expected(self) -> Option<&'static [(u16, &'static str)]> {
        match self {
            Hostile::Loop => Some(&[(413, "limit"), (504, "timeout")]),
            Hostile::Alloc => Some(&[(413, "limit")]),
            Hostile::Stack | Hostile::Abort => Some(&[(502, "crash")]),
            Hostile::Panic => Some(&[(500, "panic")]),
            Hostile::Flood => None,
        }
    }
}

/// The real work, in any process: parse the document and summarise it.
///
/// # Errors
///
/// The parser's message, for a body that is not JSON.
pub fn summarize(body: &[u8]) -> Result<Summary, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut summary = Summary {
        values: 0,
        depth: 0,
        sum: 0.0,
        text_bytes: 0,
    };
    walk(&value, 1, &mut summary);
    Ok(summary)
}

fn walk(value: &serde_json::Value, depth: u32, into: &mut Summary) {
    use serde_json::Value;
    into.values += 1;
    into.depth = into.depth.max(depth);
    match value {
        Value::Number(n) => into.sum += n.as_f64().unwrap_or(0.0),
        Value::String(s) => into.text_bytes += s.len() as u64,
        Value::Array(items) => items.iter().for_each(|v| walk(v, depth + 1, into)),
        Value::Object(map) => {
            for (key, v) in map {
                into.text_bytes += key.len() as u64;
                walk(v, depth + 1, into);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// [`summarize`] in a pool worker, with a deadline and a memory limit,
/// misbehaving as `hostile` asks.
#[rwt::timeout(secs = DEADLINE_SECS, memory = "64 MiB", cpu = 0.02, mode = "pool")]
pub async fn analyze(body: rwt::Bytes, hostile: Option<Hostile>) -> Result<Summary, String> {
    below_the_service();
    match hostile {
        Some(Hostile::Loop) => {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Some(Hostile::Alloc) => {
            // 16 MiB at a time, as a decoder sizing buffers from a header.
            let mut held = Vec::new();
            loop {
                held.push(vec![0u8; 16 << 20]);
            }
        }
        Some(Hostile::Stack) => {
            #[allow(unconditional_recursion)] // on purpose: it ends the stack
            fn deeper(n: u64) -> u64 {
                let frame = std::hint::black_box([n; 64]);
                deeper(frame[0] + 1) + frame[1]
            }
            let _ = deeper(0);
        }
        Some(Hostile::Abort) => std::process::abort(),
        Some(Hostile::Panic) => panic!("the parser met a token it did not expect"),
        Some(Hostile::Flood) => {
            use std::io::Write;
            let line = [b'.'; 1023];
            let mut out = std::io::stdout().lock();
            for _ in 0..(1 << 10) {
                let _ = out.write_all(&line);
                let _ = out.write_all(b"\n");
            }
            let _ = out.flush();
        }
        None => {}
    }
    summarize(&body)
}

/// Runs this worker below the service's own threads (nice 10): a worker
/// that spins on hostile input then takes CPU from other workers, not from
/// the threads that accept and answer requests. Once per worker.
fn below_the_service() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if !DONE.swap(true, Ordering::Relaxed) {
        // SAFETY: setpriority takes no pointers; PRIO_PROCESS with who = 0
        // is this process.
        let _ = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 10) };
    }
}

/// What the handlers share.
#[derive(Default)]
pub struct Service {
    /// Set once shutdown begins: new requests are answered 503 at once.
    pub shutting_down: AtomicBool,
}

#[derive(Deserialize)]
struct Params {
    hostile: Option<Hostile>,
}

/// The service's routes.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/analyze", post(analyze_handler))
        .route("/health", get(|| async { "ok" }))
        .with_state(service)
}

fn error(status: StatusCode, kind: &str, detail: &str) -> Response {
    let body = serde_json::json!({ "error": kind, "detail": detail });
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn analyze_handler(
    State(service): State<Arc<Service>>,
    Query(params): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    if service.shutting_down.load(Ordering::SeqCst) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutdown",
            "the service is stopping",
        );
    }
    let result = analyze(rwt::Bytes::from(body.to_vec()), params.hostile).await;
    match result {
        Ok(Ok(summary)) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&summary).expect("a summary encodes"),
        )
            .into_response(),
        Ok(Err(parse)) => error(StatusCode::BAD_REQUEST, "invalid", &parse),
        Err(e) => {
            let (status, kind) = match &e {
                rwt::Error::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
                rwt::Error::LimitExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "limit"),
                rwt::Error::Panicked { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "panic"),
                rwt::Error::Crashed { .. } => (StatusCode::BAD_GATEWAY, "crash"),
                rwt::Error::Cancelled { .. } => (StatusCode::SERVICE_UNAVAILABLE, "shutdown"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            };
            error(status, kind, &e.to_string())
        }
    }
}

/// Serves on 127.0.0.1 (`port` 0: any free port), printing the address on
/// stdout (and writing it to `addr_file`, if given), until SIGTERM or
/// Ctrl-C; then stops accepting, cancels the calls in flight (each answered
/// 503) and returns once every connection has its answer.
pub async fn serve(port: u16, addr_file: Option<std::path::PathBuf>) {
    // Loopback only: this is an example, not a server for the network.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("a bound address");
    println!("listening on http://{addr}");
    if let Some(path) = addr_file {
        // Written whole, then renamed: a reader never sees half of it.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, addr.to_string()).expect("write the address file");
        std::fs::rename(&partial, &path).expect("write the address file");
    }
    let service = Arc::new(Service::default());
    let stopping = service.clone();
    let stopped = Arc::new(tokio::sync::Notify::new());
    let signalled = stopped.clone();
    let serving = axum::serve(listener, router(service)).with_graceful_shutdown(async move {
        shutdown(&stopping).await;
        signalled.notify_one();
    });
    // A client that never finishes its request must not hold the exit:
    // after the drain, connections get until EXIT_BY to finish.
    let deadline = async {
        stopped.notified().await;
        tokio::time::sleep(EXIT_BY.saturating_sub(DRAIN)).await;
    };
    tokio::select! {
        served = serving => {
            served.expect("serve");
            eprintln!("service: stopped, every request answered");
        }
        () = deadline => eprintln!("service: stopped, dropping connections still open"),
    }
}

/// How long after SIGTERM the service exits at the latest.
const EXIT_BY: Duration = Duration::from_millis(800);

/// Waits for SIGTERM or Ctrl-C, then turns new requests away and ends the
/// calls in flight. axum then stops accepting and waits for each
/// connection's answer.
async fn shutdown(service: &Service) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("service: stopping");
    service.shutting_down.store(true, Ordering::SeqCst);
    rwt::kill_all();
    // A call that started between the flag and kill_all: end it too.
    tokio::spawn(async {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            rwt::kill_all();
        }
    });
    // Requests already on their way (written by a client, not yet read)
    // are answered 503 too: hyper's graceful shutdown closes a connection
    // it sees idle, and one whose request is still in the socket looks
    // idle. A short drain lets them arrive first.
    tokio::time::sleep(DRAIN).await;
}

/// How long requests already sent are still read, after SIGTERM.
const DRAIN: Duration = Duration::from_millis(200);
