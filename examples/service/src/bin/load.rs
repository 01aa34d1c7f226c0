//! The load test: sends `--requests N` over `--connections C` keep-alive
//! connections to the service, a `--hostile F` share of them hostile,
//! checks every answer, and prints one summary. It starts the service
//! itself (this executable, run with `--serve`) unless given `--addr`.
//!
//! ```text
//! cargo run --release --manifest-path examples/service/Cargo.toml --bin load -- \
//!     --requests 20000 --connections 32 --hostile 0.1 [--sigterm]
//! ```
//!
//! The run: a warm-up, a benign-only pass (the latency without hostile
//! load), the mixed pass, then the service's processes, threads,
//! descriptors and RSS against what they were after the warm-up. With
//! `--sigterm` (and no `--addr`), a last pass sends SIGTERM to the service
//! half-way and checks that every request already sent is answered, that
//! the service exits within 1 s, and that none of its workers is left.
//! `--latency-bar` also requires the benign p99 under hostile load to be at
//! most twice the p99 without it. Exits with 1 if any bar is missed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use nix::sys::signal::Signal;
use rwt_service_example::{summarize, Hostile, Summary, DEADLINE_SECS};

/// How much later than its deadline a hostile request may be answered.
const SLACK: Duration = Duration::from_millis(100);
/// How much the service's RSS may grow over the mixed pass (20,000
/// requests grew it by 24-264 KiB).
const RSS_SLACK_KIB: u64 = 2048;

struct Args {
    requests: usize,
    connections: usize,
    hostile: f64,
    addr: Option<SocketAddr>,
    sigterm: bool,
    kinds: Vec<Hostile>,
    latency_bar: bool,
}

fn args() -> Args {
    let mut out = Args {
        requests: 2000,
        connections: 32,
        hostile: 0.1,
        addr: None,
        sigterm: false,
        kinds: Hostile::ALL.to_vec(),
        latency_bar: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--requests" => out.requests = value().parse().expect("--requests N"),
            "--connections" => out.connections = value().parse().expect("--connections C"),
            "--hostile" => out.hostile = value().parse().expect("--hostile F (0 to 1)"),
            "--addr" => out.addr = Some(value().parse().expect("--addr 127.0.0.1:PORT")),
            "--sigterm" => out.sigterm = true,
            "--latency-bar" => out.latency_bar = true,
            "--kinds" => {
                out.kinds = value()
                    .split(',')
                    .map(|k| {
                        *Hostile::ALL
                            .iter()
                            .find(|h| h.name() == k)
                            .unwrap_or_else(|| panic!("unknown hostile kind {k:?}"))
                    })
                    .collect();
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    assert!((0.0..=1.0).contains(&out.hostile), "--hostile is a share");
    assert!(out.connections > 0 && out.requests > 0);
    if let Some(addr) = out.addr {
        assert!(addr.ip().is_loopback(), "loopback only");
    }
    out
}

/// One request: a document and, for a hostile one, how it misbehaves.
#[derive(Clone)]
struct Job {
    body: Bytes,
    hostile: Option<Hostile>,
    expected: Summary,
}

/// What came back for one job (`status` 0: nothing, the connection broke).
struct Answer {
    job: usize,
    status: u16,
    body: Vec<u8>,
    latency: Duration,
    sent_at: Instant,
}

/// Deterministic documents of a few hundred bytes, with their summaries.
fn documents(n: usize) -> Vec<(Bytes, Summary)> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n)
        .map(|i| {
            let items: Vec<serde_json::Value> = (0..(next() % 12 + 1))
                .map(|j| {
                    let tags = &["a", "bb", "ccc"][..(next() % 4) as usize];
                    serde_json::json!({
                        "id": i * 100 + j as usize,
                        "score": (next() % 10_000) as f64 / 100.0,
                        "tags": tags,
                        "nested": { "deep": [next() % 7, { "x": null }] },
                    })
                })
                .collect();
            let body =
                serde_json::to_vec(&serde_json::json!({ "doc": i, "items": items })).unwrap();
            let summary = summarize(&body).unwrap();
            (Bytes::from(body), summary)
        })
        .collect()
}

fn jobs(n: usize, hostile: f64, kinds: &[Hostile], docs: &[(Bytes, Summary)]) -> Vec<Job> {
    let mut debt = 0.0;
    let mut kind = 0;
    (0..n)
        .map(|i| {
            // Spread the hostile share evenly, kinds in turn.
            debt += hostile;
            let bad = if debt >= 1.0 {
                debt -= 1.0;
                kind += 1;
                Some(kinds[kind % kinds.len()])
            } else {
                None
            };
            let (body, expected) = docs[i % docs.len()].clone();
            Job {
                body,
                hostile: bad,
                expected,
            }
        })
        .collect()
}

/// Sends every job over `connections` connections; a connection that
/// breaks is opened again. Stops taking new jobs once `stop` is set.
/// Returns an answer per job sent (`status` 0 for one that got none) and
/// how many jobs could not be sent at all (no connection).
async fn send_all(
    addr: SocketAddr,
    jobs: Arc<Vec<Job>>,
    connections: usize,
    stop: Option<Arc<AtomicBool>>,
) -> (Vec<Answer>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(Vec::with_capacity(jobs.len())));
    let unsent = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (jobs, next, answers, unsent, stop) = (
            jobs.clone(),
            next.clone(),
            answers.clone(),
            unsent.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut sender = None;
            loop {
                if stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() {
                    return;
                }
                if sender.is_none() {
                    sender = connect(addr).await;
                }
                let Some(s) = sender.as_mut() else {
                    unsent.fetch_add(1, Ordering::SeqCst);
                    continue;
                };
                let sent_at = Instant::now();
                let answer = match request(s, &jobs[i]).await {
                    Ok((status, body)) => Answer {
                        job: i,
                        status,
                        body,
                        latency: sent_at.elapsed(),
                        sent_at,
                    },
                    Err(why) => {
                        sender = None;
                        Answer {
                            job: i,
                            status: 0,
                            body: why.into_bytes(),
                            latency: sent_at.elapsed(),
                            sent_at,
                        }
                    }
                };
                answers.lock().unwrap().push(answer);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    (answers, unsent.load(Ordering::SeqCst))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

async fn request(sender: &mut Sender, job: &Job) -> Result<(u16, Vec<u8>), String> {
    let uri = match job.hostile {
        Some(h) => format!("/analyze?hostile={}", h.name()),
        None => "/analyze".to_owned(),
    };
    let req = hyper::Request::post(uri)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(job.body.clone()))
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes().to_vec()))
}

/// Whether an answer is the right one for its job; `None` if right.
fn wrong(job: &Job, answer: &Answer) -> Option<String> {
    let got = || String::from_utf8_lossy(&answer.body).into_owned();
    match job.hostile.and_then(Hostile::expected) {
        None => {
            if answer.status != 200 {
                return Some(format!(
                    "status {} for a benign document: {}",
                    answer.status,
                    got()
                ));
            }
            match serde_json::from_slice::<Summary>(&answer.body) {
                Ok(s) if s == job.expected => None,
                _ => Some(format!("wrong summary: {}", got())),
            }
        }
        Some(right) => {
            let error = serde_json::from_slice::<serde_json::Value>(&answer.body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
            let is_right = right
                .iter()
                .any(|(status, kind)| answer.status == *status && error.as_deref() == Some(*kind));
            if !is_right {
                return Some(format!(
                    "{:?}: expected one of {right:?}, got {}: {}",
                    job.hostile,
                    answer.status,
                    got()
                ));
            }
            let bound = Duration::from_secs_f64(DEADLINE_SECS) + SLACK;
            (answer.latency > bound).then(|| {
                format!(
                    "{:?} answered after {:?}, past {bound:?}",
                    job.hostile, answer.latency
                )
            })
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The service's processes (itself and its children), threads,
/// descriptors and RSS, from /proc.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Footprint {
    children: usize,
    threads: usize,
    fds: usize,
    rss_kib: u64,
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// The footprint once the pool is done starting replacements and rwt's
/// poller thread (which ends 0.5 s after its last wait) is gone: the same
/// for 0.8 s (five looks 200 ms apart), and (given `at_most`) no more than
/// it, within 5 s.
fn settled(pid: u32, at_most: Option<Footprint>) -> Footprint {
    let started = Instant::now();
    let key = |f: &Footprint| (f.children, f.threads, f.fds);
    let mut last = footprint(pid);
    let mut same = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = footprint(pid);
        let within = at_most.is_none_or(|m| {
            now.children <= m.children && now.threads <= m.threads && now.fds <= m.fds
        });
        same = if key(&now) == key(&last) { same + 1 } else { 0 };
        if (same >= 4 && within) || started.elapsed() > Duration::from_secs(5) {
            return now;
        }
        last = now;
    }
}

fn footprint(pid: u32) -> Footprint {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Footprint {
        children: children_of(pid).len(),
        threads: field("Threads:") as usize,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count),
        rss_kib: field("VmRSS:"),
    }
}

/// The service, started from the binary beside this one.
struct Started {
    child: std::process::Child,
    addr: SocketAddr,
}

/// The service, as this same executable run with `--serve` (so that
/// `cargo run --bin load` needs no other binary). Its output goes to
/// /dev/null, as to a log sink: the flood requests' megabytes must not be
/// copied by the process that measures the latencies. Its address comes
/// through a file.
fn start_service() -> Started {
    let exe = std::env::current_exe().unwrap();
    let addr_file = std::env::temp_dir().join(format!("rwt-load-{}.addr", std::process::id()));
    let _ = std::fs::remove_file(&addr_file);
    let child = std::process::Command::new(&exe)
        .arg("--serve")
        .arg(&addr_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let started = Instant::now();
    let addr = loop {
        if let Ok(text) = std::fs::read_to_string(&addr_file) {
            break text.trim().parse().expect("the service's address");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the service did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&addr_file);
    Started { child, addr }
}

/// Latencies of the benign answers, sorted.
fn benign_latencies(jobs: &[Job], answers: &[Answer]) -> Vec<Duration> {
    let mut l: Vec<Duration> = answers
        .iter()
        .filter(|a| jobs[a.job].hostile.and_then(Hostile::expected).is_none())
        .map(|a| a.latency)
        .collect();
    l.sort();
    l
}

/// Tallies of one pass.
#[derive(Default)]
struct Tally {
    answered: usize,
    lost: usize,
    wrong: usize,
    per_kind: BTreeMap<&'static str, (usize, usize, Duration)>,
}

fn tally(jobs: &[Job], answers: &[Answer], unsent: usize, what: &str) -> Tally {
    let mut t = Tally {
        lost: unsent,
        ..Tally::default()
    };
    for a in answers {
        let job = &jobs[a.job];
        if a.status == 0 {
            t.lost += 1;
            if t.lost <= 5 {
                eprintln!("lost ({what}): {}", String::from_utf8_lossy(&a.body));
            }
            continue;
        }
        t.answered += 1;
        let why = wrong(job, a);
        if let Some(why) = &why {
            t.wrong += 1;
            if t.wrong <= 5 {
                eprintln!("wrong ({what}): {why}");
            }
        }
        if let Some(h) = job.hostile {
            let e = t.per_kind.entry(h.name()).or_default();
            e.0 += 1;
            e.1 += usize::from(why.is_none());
            e.2 = e.2.max(a.latency);
        }
    }
    t
}

fn main() {
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some("--serve") {
        // The service itself, on a runtime of its own.
        let addr_file = argv.next().map(std::path::PathBuf::from);
        tokio::runtime::Runtime::new()
            .expect("a tokio runtime")
            .block_on(rwt_service_example::serve(0, addr_file));
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(load());
}

async fn load() {
    let args = args();
    let mut started = args.addr.is_none().then(start_service);
    let addr = args.addr.unwrap_or_else(|| started.as_ref().unwrap().addr);
    let pid = started.as_ref().map(|s| s.child.id());
    let docs = documents(500);
    let mut failed = Vec::new();

    // Warm-up, then the benign-only pass: the pool grows to the number of
    // connections, and what the service holds then is the baseline.
    let warm = Arc::new(jobs(args.connections * 8, 0.0, &args.kinds, &docs));
    let _ = send_all(addr, warm, args.connections, None).await;
    let base_jobs = Arc::new(jobs(args.requests, 0.0, &args.kinds, &docs));
    let base_wall = Instant::now();
    let (base, base_unsent) = send_all(addr, base_jobs.clone(), args.connections, None).await;
    let base_elapsed = base_wall.elapsed();
    let base_lat = benign_latencies(&base_jobs, &base);
    let base_tally = tally(&base_jobs, &base, base_unsent, "benign pass");
    let before = pid.map(|pid| settled(pid, None));

    let mixed_jobs = Arc::new(jobs(args.requests, args.hostile, &args.kinds, &docs));
    let wall = Instant::now();
    let (answers, unsent) = send_all(addr, mixed_jobs.clone(), args.connections, None).await;
    let elapsed = wall.elapsed();
    let lat = benign_latencies(&mixed_jobs, &answers);
    let mixed = tally(&mixed_jobs, &answers, unsent, "mixed pass");

    // Failed workers' replacements start in the background: give them a
    // moment to be counted.
    let after = pid.map(|pid| settled(pid, before));

    let sent = 2 * args.requests;
    let answered = mixed.answered + base_tally.answered;
    let lost = mixed.lost + base_tally.lost;
    let wrong_n = mixed.wrong + base_tally.wrong;
    println!(
        "requests: {sent} over {} connections ({} benign-only, then {} with {:.0} % hostile)",
        args.connections,
        args.requests,
        args.requests,
        args.hostile * 100.0
    );
    println!(
        "benign latency without hostile load: p50 {} p99 {}; with it: p50 {} p99 {} (max {})",
        ms(percentile(&base_lat, 0.5)),
        ms(percentile(&base_lat, 0.99)),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
    println!(
        "requests/s: {:.0} benign-only, {:.0} with the hostile share ({:.2} s and {:.2} s)",
        args.requests as f64 / base_elapsed.as_secs_f64(),
        args.requests as f64 / elapsed.as_secs_f64(),
        base_elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    for (kind, (n, right, slowest)) in &mixed.per_kind {
        println!(
            "hostile {kind}: {right} of {n} answered right, slowest {}",
            ms(*slowest)
        );
    }
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "service before: {} children, {} threads, {} fds, {} KiB RSS; \
             after: {} children, {} threads, {} fds, {} KiB RSS",
            b.children, b.threads, b.fds, b.rss_kib, a.children, a.threads, a.fds, a.rss_kib
        );
        if a.children > b.children || a.threads > b.threads || a.fds > b.fds {
            failed.push("the service holds more after the run than before".to_owned());
        }
        // Flat: allocator noise, not a leak of a request's worth each time.
        if a.rss_kib > b.rss_kib + RSS_SLACK_KIB {
            failed.push(format!(
                "the service's RSS grew {} KiB over the run",
                a.rss_kib - b.rss_kib
            ));
        }
    }
    if args.hostile > 0.0 {
        let base_p99 = percentile(&base_lat, 0.99).as_secs_f64();
        let ratio = percentile(&lat, 0.99).as_secs_f64() / base_p99.max(1e-9);
        println!("benign p99 with hostile load / without: {ratio:.2}x");
        if args.latency_bar && ratio > 2.0 {
            failed.push(format!("benign p99 rose {ratio:.2}x under hostile load"));
        }
    }
    if args.sigterm {
        match started.take() {
            Some(s) => failed.extend(sigterm_pass(s, &docs, &args).await),
            None => failed.push("--sigterm needs the load test to start the service".into()),
        }
    }
    println!("{sent} sent, {answered} answered, {lost} lost, {wrong_n} wrong");
    if let Some(mut s) = started {
        signal(s.child.id(), Signal::SIGTERM);
        let _ = s.child.wait();
    }
    if lost > 0 || wrong_n > 0 || !failed.is_empty() {
        for f in &failed {
            eprintln!("bar missed: {f}");
        }
        std::process::exit(1);
    }
}

fn signal(pid: u32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// SIGTERM in the middle of a hostile run: every request sent before it is
/// answered, the service exits within 1 s, and no worker of it is left.
async fn sigterm_pass(mut s: Started, docs: &[(Bytes, Summary)], args: &Args) -> Vec<String> {
    let mut failed = Vec::new();
    let pid = s.child.id();
    let run = Arc::new(jobs(
        args.requests.max(2000),
        args.hostile.max(0.1),
        &args.kinds,
        docs,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (jobs, stop, addr, c) = (run.clone(), stop.clone(), s.addr, args.connections);
        tokio::spawn(async move { send_all(addr, jobs, c, Some(stop)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let term = Instant::now();
    signal(pid, Signal::SIGTERM);
    let exited = tokio::task::spawn_blocking(move || {
        let _ = s.child.wait();
        term.elapsed()
    });
    // Requests that come after SIGTERM, on new connections, during the
    // service's drain: each must be turned away with 503.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let late_jobs = Arc::new(jobs(8, 0.0, &args.kinds, docs));
    let (late, late_unsent) = send_all(s.addr, late_jobs, 8, None).await;
    let late_turned_away = late
        .iter()
        .filter(|a| {
            a.status == 503
                && serde_json::from_slice::<serde_json::Value>(&a.body)
                    .is_ok_and(|v| v["error"] == "shutdown")
        })
        .count();
    let (answers, _) = sender.await.unwrap();
    let exit_after = exited.await.unwrap();
    println!(
        "sigterm: {late_turned_away} of 8 requests sent after SIGTERM turned away with 503 \
         shutdown ({late_unsent} could not connect)"
    );
    if late_turned_away != 8 {
        failed.push(format!(
            "{} of 8 requests sent during the drain were not answered 503 shutdown",
            8 - late_turned_away
        ));
    }
    let before_term: Vec<&Answer> = answers.iter().filter(|a| a.sent_at < term).collect();
    let unanswered = before_term.iter().filter(|a| a.status == 0).count();
    let wrong_n = before_term
        .iter()
        .filter(|a| a.status != 0 && a.status != 503 && wrong(&run[a.job], a).is_some())
        .count();
    let shut = before_term.iter().filter(|a| a.status == 503).count();
    println!(
        "sigterm: {} requests in flight or done at SIGTERM, {} answered ({shut} of them 503), \
         {unanswered} unanswered, {wrong_n} wrong; the service exited {} after SIGTERM",
        before_term.len(),
        before_term.len() - unanswered,
        ms(exit_after)
    );
    if unanswered > 0 || wrong_n > 0 {
        failed.push(format!(
            "{unanswered} requests sent before SIGTERM got no answer, {wrong_n} a wrong one"
        ));
    }
    if exit_after > Duration::from_secs(1) {
        failed.push(format!("the service took {} to exit", ms(exit_after)));
    }
    // Killed with their parent (or at the end of their channel); init
    // reaps them. A zombie runs nothing: only a live one is left over.
    let live = |w: &u32| {
        std::fs::read_to_string(format!("/proc/{w}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .is_some_and(|zombie| !zombie)
    };
    // Every worker is this executable, exec'd again: any such process but
    // this one, the workers started during the shutdown included.
    let workers = || {
        let me = std::process::id();
        let exe = std::fs::read_link("/proc/self/exe").ok();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
            .filter(|&p| p != me && std::fs::read_link(format!("/proc/{p}/exe")).ok() == exe)
            .filter(|p| live(p))
            .collect::<Vec<u32>>()
    };
    let gone_by = Instant::now() + Duration::from_secs(1);
    while !workers().is_empty() && Instant::now() < gone_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = workers();
    println!(
        "sigterm: {} of the service's workers left after it exited",
        left.len()
    );
    if !left.is_empty() {
        failed.push(format!("workers left after the service exited: {left:?}"));
    }
    failed
}
