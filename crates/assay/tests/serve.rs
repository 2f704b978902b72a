//! `assay serve` as a process: set up with the CLI, answer over a real socket, kill the server with SIGKILL, and
//! find every acknowledged answer after a restart. Runs on SQLite and on PostgreSQL.

mod common;

use std::path::Path;
use std::process::{Child, Command};

use common::{bare_assay, http, ok, spawn_server};

/// `assay` on a given store.
fn assay(home: &Path, store: &str) -> Command {
    let mut cmd = bare_assay(home);
    cmd.arg("--store").arg(store).arg("--quiet");
    cmd
}

/// Start `assay serve` on a free loopback port; returns the child and the port.
fn serve(home: &Path, store: &str) -> (Child, u16) {
    let mut cmd = assay(home, store);
    cmd.args(["serve", "--bind", "127.0.0.1:0"]);
    spawn_server(cmd)
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
