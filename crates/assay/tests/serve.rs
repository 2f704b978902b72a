//! `assay serve` as a process: set up with the CLI, answer over a real socket, kill the server with SIGKILL, and
//! find every acknowledged answer after a restart. Runs on SQLite and on PostgreSQL.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{bare_assay, ok};

/// `assay` on a given store.
fn assay(home: &Path, store: &str) -> Command {
    let mut cmd = bare_assay(home);
    cmd.arg("--store").arg(store).arg("--quiet");
    cmd
}

/// Start `assay serve` on a free loopback port; returns the child and the port.
fn serve(home: &Path, store: &str) -> (Child, u16) {
    let mut child = assay(home, store)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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

/// One HTTP/1.1 request; returns the status and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
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

fn issue_4_serve_loses_nothing_acknowledged(store: &str) {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..6)
        .map(|i| {
            let confidence = 0.5 + f64::from(i) * 0.02;
            serde_json::json!({"text": format!("m{i}"), "assay": {"label": "ham", "confidence": confidence}})
                .to_string()
        })
        .collect();
    std::fs::write(dir.path().join("rows.jsonl"), rows.join("\n")).unwrap();
    std::fs::write(
        dir.path().join("task.toml"),
        "name = \"serve-test\"\ntype = \"classify\"\ninput = \"{{ text }}\"\nlabels = [\"ham\", \"spam\"]\n\
         [review]\nconfidence-below = 0.55\n",
    )
    .unwrap();
    let h = home.path();
    let admin = ok(assay(h, store).args(["annotator", "add", "boss", "--admin"]));
    let admin = admin.trim();
    let alice = ok(assay(h, store).args(["annotator", "add", "alice"]));
    let alice = alice.trim();
    ok(assay(h, store)
        .args(["project", "create"])
        .arg(dir.path().join("task.toml")));
    let out = ok(assay(h, store)
        .args(["project", "import", "serve-test"])
        .arg(dir.path().join("rows.jsonl")));
    assert!(out.is_empty(), "the summary goes to stderr");

    let (mut server, port) = serve(h, store);
    assert_eq!(http(port, "GET", "/api/health", None, None).0, 200);
    assert_eq!(http(port, "GET", "/api/me", None, None).0, 401);
    assert_eq!(http(port, "GET", "/api/whatever", None, None).0, 401);
    let (status, body) = http(port, "GET", "/api/projects/1", Some(admin), None);
    assert_eq!(status, 200, "{body}");
    let progress: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        progress["by_reason"]["low-confidence"], 3,
        "0.50, 0.52, 0.54"
    );
    let mut acknowledged = 0;
    loop {
        let (status, body) = http(port, "GET", "/api/projects/1/next", Some(alice), None);
        if status == 204 {
            break;
        }
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        let id = view["assignment_id"].as_i64().unwrap();
        let (status, body) = http(
            port,
            "POST",
            &format!("/api/assignments/{id}/answer"),
            Some(alice),
            Some(r#"{"value": "spam", "duration_ms": 700, "suggestion_shown": true}"#),
        );
        assert_eq!(status, 200, "{body}");
        acknowledged += 1;
    }
    assert_eq!(acknowledged, 3);
    // SIGKILL: no graceful shutdown. Every acknowledged answer must still be there.
    server.kill().unwrap();
    server.wait().unwrap();
    let (mut server, port) = serve(h, store);
    let (_, body) = http(port, "GET", "/api/projects/1", Some(admin), None);
    let progress: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(progress["slots"]["answered"], 3, "{progress}");
    assert_eq!(progress["annotators"][0]["median_duration_ms"], 700);
    server.kill().unwrap();
    server.wait().unwrap();
    let list = ok(assay(h, store).args(["project", "list"]));
    assert!(list.contains("3/3"), "{list}");
}

#[test]
fn issue_4_serve_loses_nothing_acknowledged_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    issue_4_serve_loses_nothing_acknowledged(&dir.path().join("store.db").display().to_string());
}

#[test]
fn issue_4_serve_loses_nothing_acknowledged_on_postgres() {
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(assay_store::testing::fresh_postgres_database());
    issue_4_serve_loses_nothing_acknowledged(&url);
}
