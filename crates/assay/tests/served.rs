//! `assay label` with a served model, against llama-cpp-python 0.3.36 serving SmolLM2 on loopback, through a
//! fault-injecting proxy written here: 429s with Retry-After, answers slower than the timeout, dropped
//! connections, 503s, and the server killed and restarted mid-run. Every row must end up labeled exactly once,
//! and a run stopped with SIGINT and started again must not send any request it already had an answer for.

mod common;
#[path = "../../assay-llm/tests/support/llama_server.rs"]
mod llama_server;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assay, ok, read_jsonl, sql_count, sql_rows, test_home};
use llama_server::LlamaServer;

/// What the proxy does with the n-th request (counted from 1).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Forward,
    /// Wait, then forward: the client has given up by then.
    Delay(Duration),
    /// 429 with `Retry-After: 1`.
    TooMany,
    /// 503.
    Unavailable,
    /// Close the connection without an answer.
    Reset,
}

type Policy = Arc<dyn Fn(usize) -> Action + Send + Sync>;

/// A loopback HTTP/1.1 proxy in front of the server, one request per connection.
struct Proxy {
    port: u16,
    /// Requests received.
    seen: Arc<AtomicUsize>,
    /// Bodies of the requests the server answered with 200, in order.
    answered: Arc<Mutex<Vec<String>>>,
    /// Bodies of every request received.
    received: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(upstream: u16, policy: Policy) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, a, r) = (seen.clone(), answered.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (s, a, r, policy) = (s.clone(), a.clone(), r.clone(), policy.clone());
                std::thread::spawn(move || {
                    let _ = handle(stream, upstream, &policy, &s, &a, &r);
                });
            }
        });
        Self {
            port,
            seen,
            answered,
            received,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

/// Read one request: the head up to the blank line and a `Content-Length` body.
fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((head, body))
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str) -> std::io::Result<()> {
    let body = format!("{{\"error\": \"{status} (injected by the test proxy)\"}}");
    write!(
        stream,
        "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn handle(
    mut client: TcpStream,
    upstream: u16,
    policy: &Policy,
    seen: &AtomicUsize,
    answered: &Mutex<Vec<String>>,
    received: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let (head, body) = read_request(&mut client)?;
    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
    let body_text = String::from_utf8_lossy(&body).into_owned();
    received.lock().unwrap().push(body_text.clone());
    match policy(n) {
        Action::TooMany => {
            return respond(&mut client, "429 Too Many Requests", "Retry-After: 1\r\n")
        }
        Action::Unavailable => return respond(&mut client, "503 Service Unavailable", ""),
        Action::Reset => {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Action::Delay(d) => std::thread::sleep(d),
        Action::Forward => {}
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        // The server is down (killed, restarting): a gateway error, as a real proxy would say.
        return respond(&mut client, "502 Bad Gateway", "");
    };
    // One request per connection: ask the server to close after answering, so its answer ends at EOF.
    let mut forwarded: String = head
        .trim_end_matches("\r\n")
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    server.write_all(forwarded.as_bytes())?;
    server.write_all(&body)?;
    let mut response = Vec::new();
    if server.read_to_end(&mut response).is_err() || response.is_empty() {
        return respond(&mut client, "502 Bad Gateway", "");
    }
    if response.starts_with(b"HTTP/1.1 200") {
        answered.lock().unwrap().push(body_text);
    }
    client.write_all(&response)?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// The cache keys of the stored answers.
fn stored_keys(db: &Path) -> HashSet<String> {
    let keys: Vec<(String,)> = sql_rows(db, "SELECT request_key FROM model_responses");
    keys.into_iter().map(|(k,)| k).collect()
}

/// assay's cache key of a request body sent to `path` under the base URL `base`.
fn request_key(base: &str, path: &str, body: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("{base}\n{path}\n{body}").as_bytes(),
    ))
}

fn model_path() -> PathBuf {
    // `assay()` fetches SmolLM2 into the shared test cache on first use.
    let _ = assay();
    test_home().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The SMS task pointed at `endpoint`: first-token scoring through the chat endpoint (one request per row), the
/// whole vocabulary's alternatives (the tiny model ranks its label tokens far down).
fn write_task(dir: &Path, endpoint: &str, timeout_seconds: u32) -> PathBuf {
    let sms = common::repo().join("examples/sms-spam/sms-500.csv");
    let task = dir.join("task.toml");
    std::fs::write(
        &task,
        format!(
            r#"name = "sms-served"
type = "classify"
dataset = "{}"
input = "{{{{ text }}}}"
gold = "label"
guidelines = "You sort SMS text messages. Spam is unsolicited advertising or a scam."
labels = ["ham", "spam"]

[model]
name = "smollm2"
endpoint = "{endpoint}"
scoring = "first-token"
top-logprobs = 49152
concurrency = 4
timeout-seconds = {timeout_seconds}
max-retries = 10
price-input = 0.5
price-output = 1.5
"#,
            sms.display()
        ),
    )
    .unwrap();
    task
}

fn label_command(task: &Path, db: &Path, out: &Path, limit: u32) -> Command {
    let mut cmd = assay();
    cmd.args(["--store"])
        .arg(db)
        .args(["label"])
        .arg(task)
        .args(["--limit", &limit.to_string(), "--output"])
        .arg(out);
    cmd
}

#[test]
fn issue_6_a_served_run_survives_429s_timeouts_resets_and_a_killed_server_labeling_every_row_once()
{
    if !llama_server::server_available() {
        return;
    }
    let model = model_path();
    let server = Arc::new(Mutex::new(LlamaServer::start(&model)));
    let upstream = server.lock().unwrap().port;
    let policy: Policy = Arc::new(|n| match n {
        3 => Action::TooMany,
        5 => Action::Delay(Duration::from_secs(5)),
        7 => Action::Reset,
        9 | 10 => Action::Unavailable,
        _ => Action::Forward,
    });
    let proxy = Proxy::start(upstream, policy);
    // Kill the server once 14 requests have passed, and bring it back a moment later on the same port.
    let seen = proxy.seen.clone();
    let killer_server = server.clone();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        while seen.load(Ordering::SeqCst) < 14 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut s = killer_server.lock().unwrap();
        s.kill();
        std::thread::sleep(Duration::from_secs(1));
        s.restart();
    });

    let dir = tempfile::tempdir().unwrap();
    let task = write_task(dir.path(), &proxy.endpoint(), 3);
    let db = dir.path().join("store.db");
    let out = dir.path().join("out.jsonl");
    let stdout = ok(&mut label_command(&task, &db, &out, 40));
    killer.join().unwrap();
    assert!(stdout.contains("first-token"), "{stdout}");

    let rows = read_jsonl(&out);
    assert_eq!(rows.len(), 40);
    for row in &rows {
        let label = row["assay"]["label"]
            .as_str()
            .unwrap_or_else(|| panic!("unlabeled: {row}"));
        assert!(label == "ham" || label == "spam", "{row}");
        let usage = &row["assay"]["usage"];
        assert_eq!(usage["requests"], 1, "{row}");
        assert!(usage["input_tokens"].as_u64().unwrap() > 10, "{row}");
        assert!(usage["cost_usd"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM annotations"), 40);
    assert_eq!(
        sql_count(&db, "SELECT COUNT(DISTINCT record_id) FROM annotations"),
        40
    );
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM row_errors"), 0);
    // 40 rows and 3 content-free inputs, each asked once and stored once.
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM model_responses"), 43);
    assert!(sql_count(&db, "SELECT retries FROM run_usage") >= 5);
    assert!(proxy.seen.load(Ordering::SeqCst) > 43 + 6);
}

#[test]
fn issue_6_sigint_then_restart_sends_no_request_that_was_already_answered() {
    if !llama_server::server_available() {
        return;
    }
    let model = model_path();
    let server = LlamaServer::start(&model);
    // Slow every answer down a little so the run is still going when it is stopped.
    let policy: Policy = Arc::new(|_| Action::Delay(Duration::from_millis(150)));
    let proxy = Proxy::start(server.port, policy);
    let dir = tempfile::tempdir().unwrap();
    // A long timeout: every answer the server gives reaches assay, so "answered" means "stored".
    let task = write_task(dir.path(), &proxy.endpoint(), 60);
    let db = dir.path().join("store.db");
    let out = dir.path().join("out.jsonl");

    let child = label_command(&task, &db, &out, 60)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while proxy.answered.lock().unwrap().len() < 25 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let first = child.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(130),
        "stopped with SIGINT: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let saved = sql_count(&db, "SELECT COUNT(*) FROM annotations");
    assert!(
        saved > 0 && saved < 60,
        "{saved} rows saved before the stop"
    );
    let answered_before: HashSet<String> = proxy.answered.lock().unwrap().iter().cloned().collect();
    let received_before = proxy.received.lock().unwrap().len();
    // Every answer that came back is in the store, even those of rows the stop left unfinished.
    let stored_before = stored_keys(&db);
    assert_eq!(stored_before.len(), answered_before.len());

    ok(&mut label_command(&task, &db, &out, 60));
    let sent_after: Vec<String> = proxy.received.lock().unwrap()[received_before..].to_vec();
    let repeated = sent_after
        .iter()
        .filter(|b| answered_before.contains(*b))
        .count();
    assert_eq!(
        repeated, 0,
        "the restarted run asked again for answers it had"
    );
    // The same by assay's own cache keys (which name the server): every answer is stored under its key, and
    // nothing was sent whose answer was stored.
    let key = |b: &String| request_key(&proxy.endpoint(), "chat/completions", b);
    assert!(answered_before
        .iter()
        .all(|b| stored_before.contains(&key(b))));
    assert!(sent_after.iter().all(|b| !stored_before.contains(&key(b))));
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM annotations"), 60);
    assert_eq!(
        sql_count(&db, "SELECT COUNT(DISTINCT record_id) FROM annotations"),
        60
    );
    // 60 rows and 3 content-free inputs: the second run got the content-free answers from the store.
    assert_eq!(sent_after.len() + answered_before.len(), 63);
    let rows = read_jsonl(&out);
    assert!(rows.iter().all(|r| r["assay"]["label"].is_string()));

    // `assay runs` shows both runs' requests and cache hits.
    let runs = ok(assay().args(["--store"]).arg(&db).arg("runs"));
    assert!(
        runs.contains("requests") && runs.contains("cached"),
        "{runs}"
    );
    assert!(sql_count(&db, "SELECT MAX(cache_hits) FROM run_usage") >= 3);
}

#[test]
fn issue_6_plan_estimates_requests_tokens_and_cost_without_sending_anything() {
    // No server at all: the plan must not need one.
    let dir = tempfile::tempdir().unwrap();
    let task = write_task(dir.path(), "http://127.0.0.1:9/v1", 3);
    let db = dir.path().join("store.db");
    let out = dir.path().join("out.jsonl");
    let mut cmd = label_command(&task, &db, &out, 100);
    cmd.arg("--plan");
    let stdout = ok(&mut cmd);
    assert!(stdout.contains("nothing was sent"), "{stdout}");
    // 100 rows + 3 content-free inputs, one request each, none cached.
    assert!(
        stdout.contains("│ requests") && stdout.contains("103"),
        "{stdout}"
    );
    assert!(stdout.contains("task file"), "{stdout}");
    assert!(!out.exists());
}
