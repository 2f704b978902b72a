//! The review UI of `assay serve` in a real headless Chromium (issue 4): the real binary labels a few rows of the
//! bundled SMS spam and PandaLM examples with the embedded model, makes review projects of them, serves them, and
//! `tests/browser/review.mjs` (playwright-core driving /usr/bin/chromium) answers as an annotator would and uses the
//! admin screens. Then the store must hold exactly the answers the browser gave.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    repo().join("tests/browser")
}

/// Why the browser test cannot run here, if it cannot: no Chromium, no node, or playwright-core not installed and
/// `npm ci` failing (it needs the npm registry once; .ci/run does it).
fn missing_tools() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!(
            "{CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)"
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is missing (apt-get install -y nodejs npm; .ci/run installs it)".into());
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(browser_dir())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Some(format!(
                    "`npm ci --prefix tests/browser` failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
            Err(e) => return Some(format!("npm is missing ({e}); .ci/run installs it")),
        }
    }
    None
}

/// Copies a bundled example task into `dir` with its dataset as an absolute path and its output in `dir`.
fn example_task(example: &str, dir: &Path, dataset: &Path, output: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("examples").join(example).join("task.toml")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("dataset = ") {
            out.push_str(&format!("dataset = {:?}\n", dataset.display().to_string()));
        } else if line.starts_with("output = ") {
            out.push_str(&format!("output = {output:?}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = dir.join(format!("{example}.toml"));
    std::fs::write(&path, out).unwrap();
    path
}

/// The review task: the same task over the labeled rows (their `assay` column brings the machine's labels), every
/// labeled item routed to one person.
fn review_task(example: &str, dir: &Path, labeled: &Path) -> PathBuf {
    let labeled_task = dir.join(format!("{example}.toml"));
    let text = std::fs::read_to_string(&labeled_task).unwrap();
    // The example's own `[review]` section (the last table in the file) gives way to the test's.
    let text = text.split("\n[review]").next().unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("dataset = ") {
            out.push_str(&format!("dataset = {:?}\n", labeled.display().to_string()));
        } else if !line.starts_with("output = ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("\n[review]\nlowest-share = 1.0\noverlap = 1\n");
    let path = dir.join(format!("{example}-review.toml"));
    std::fs::write(&path, out).unwrap();
    path
}

/// The token `assay annotator add` prints (64 hex digits).
fn token_in(stdout: &str) -> String {
    stdout
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no token in the output of `assay annotator add`:\n{stdout}"))
        .to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `assay serve`, killed when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

fn serve(store: &Path, dir: &Path) -> (Server, u16) {
    let log = dir.join("serve.log");
    let port = free_port();
    let child = bare_assay(&test_home())
        .env("ASSAY_STORE", store)
        .env("ASSAY_LOG", "info")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        // The admin creates a project from a task file in `dir` (issue 11: only under --projects-dir).
        .arg("--projects-dir")
        .arg(dir)
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap();
    let mut server = Server { child, log };
    let start = Instant::now();
    while !health(port) {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("assay serve exited ({status}):\n{}", server.log());
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "assay serve did not answer /api/health in 30 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

/// One human annotation as the store holds it.
#[derive(Debug)]
struct Human {
    assignment_id: i64,
    annotator: String,
    task: String,
    value: serde_json::Value,
    duration_ms: Option<i64>,
    confidence: Option<f64>,
}

/// assignment_id, annotator, task name, value, duration_ms, confidence
type HumanRow = (
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<f64>,
);

fn human_annotations(store: &Path) -> Vec<Human> {
    let rows: Vec<HumanRow> = sql_rows(
        store,
        "SELECT a.assignment_id, a.annotator, t.name, a.value, a.duration_ms, a.confidence \
         FROM annotations a JOIN tasks t ON t.id = a.task_id \
         WHERE a.annotator_kind = 'human' ORDER BY a.assignment_id",
    );
    rows.into_iter()
        .map(
            |(assignment_id, annotator, task, value, duration_ms, confidence)| Human {
                assignment_id: assignment_id.expect("a human annotation names its assignment"),
                annotator,
                task,
                value: serde_json::from_str(
                    value.as_deref().expect("a human annotation has a value"),
                )
                .expect("the value is JSON"),
                duration_ms,
                confidence,
            },
        )
        .collect()
}

#[test]
fn issue_4_review_ui_in_headless_chromium_keyboard_undo_pairs_and_others_items() {
    if let Some(why) = missing_tools() {
        skip_or_fail_in_ci("issue_4_review_ui_in_headless_chromium", &why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let store = dir.join("assay.db");
    let run = |args: &[&str]| {
        ok(assay()
            .env("ASSAY_STORE", &store)
            .current_dir(dir)
            .args(args))
    };

    // Machine labels for 30 SMS messages and 6 PandaLM pairs (both orders) from the real embedded model.
    let sms = example_task(
        "sms-spam",
        dir,
        &repo().join("examples/sms-spam/sms-500.csv"),
        "sms.labeled.jsonl",
    );
    run(&["label", sms.to_str().unwrap(), "--limit", "30"]);
    let pairs = example_task(
        "pandalm",
        dir,
        &repo().join("examples/pandalm/pandalm-test.jsonl"),
        "pairs.labeled.jsonl",
    );
    run(&["label", pairs.to_str().unwrap(), "--limit", "6"]);

    // Two projects over the labeled rows, two annotators.
    let sms_review = review_task("sms-spam", dir, &dir.join("sms.labeled.jsonl"));
    run(&[
        "project",
        "create",
        sms_review.to_str().unwrap(),
        "--name",
        "sms",
    ]);
    let pairs_review = review_task("pandalm", dir, &dir.join("pairs.labeled.jsonl"));
    run(&[
        "project",
        "create",
        pairs_review.to_str().unwrap(),
        "--name",
        "pairs",
    ]);
    let alice = token_in(&run(&["annotator", "add", "alice"]));
    let bob = token_in(&run(&["annotator", "add", "bob"]));
    let boss = token_in(&run(&["annotator", "add", "boss", "--admin"]));

    let (server, port) = serve(&store, dir);
    let shot = dir.join("review-screen.png");
    let result_path = dir.join("result.json");
    let out = Command::new("node")
        .arg(browser_dir().join("review.mjs"))
        .current_dir(browser_dir())
        .env("ASSAY_URL", format!("http://127.0.0.1:{port}"))
        .env("ASSAY_TOKEN", &alice)
        .env("ASSAY_OTHER_TOKEN", &bob)
        .env("ASSAY_CLASSIFY_PROJECT", "sms")
        .env("ASSAY_COMPARE_PROJECT", "pairs")
        .env("ASSAY_ADMIN_TOKEN", &boss)
        .env("ASSAY_ADMIN_TASK", &pairs_review)
        .env("ASSAY_SCREENSHOT", &shot)
        .env("ASSAY_RESULT", &result_path)
        .env("ASSAY_FAILURE_SCREENSHOT", dir.join("failure.png"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the browser test failed ({}):\n{}\n{}\n--- assay serve log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    drop(server);

    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result_path).unwrap()).unwrap();
    let answers = result["answers"].as_array().unwrap();
    // Classify: spam, ham, (ham taken back with `u`, answered spam again), ham by mouse, one skipped, ham.
    // Compare: 1, 2, t.
    let expected: BTreeMap<i64, serde_json::Value> = answers
        .iter()
        .map(|a| (a["assignment_id"].as_i64().unwrap(), a["value"].clone()))
        .collect();
    assert_eq!(expected.len(), 8, "{result}");
    let values = |project: &str| -> Vec<String> {
        answers
            .iter()
            .filter(|a| a["project"] == project)
            .map(|a| a["value"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values("sms"), ["spam", "ham", "spam", "ham", "ham"]);
    assert_eq!(values("pairs"), ["1", "2", "tie"]);

    let stored = human_annotations(&store);
    assert_eq!(
        stored.len(),
        8,
        "exactly the browser's answers are stored, the undone one only as re-answered: {stored:#?}"
    );
    let got: BTreeMap<i64, serde_json::Value> = stored
        .iter()
        .map(|h| (h.assignment_id, h.value.clone()))
        .collect();
    assert_eq!(got, expected);
    let undone = result["undone"]["assignment_id"].as_i64().unwrap();
    assert_eq!(result["undone"]["value"], "ham");
    assert_eq!(
        got[&undone], "spam",
        "the undone answer was replaced by the second one"
    );
    for skipped in result["skipped"].as_array().unwrap() {
        assert!(
            !got.contains_key(&skipped.as_i64().unwrap()),
            "a skip stores no answer"
        );
    }
    for h in &stored {
        assert_eq!(h.annotator, "alice", "{h:?}");
        assert_eq!(h.confidence, None, "{h:?}");
        assert!(
            h.duration_ms.is_some_and(|ms| (200..120_000).contains(&ms)),
            "the time on screen is measured and sent: {h:?}"
        );
    }
    let mut by_task: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &stored {
        *by_task.entry(h.task.as_str()).or_default() += 1;
    }
    assert_eq!(by_task, BTreeMap::from([("pandalm", 3), ("sms-spam", 5)]));
    assert_eq!(result["forbidden"]["status"], 403);

    // The admin screens: an annotator with two skills and a project, made in the browser.
    assert_eq!(
        sql_count(
            &store,
            "SELECT count(*) FROM annotator_skills s JOIN annotators a ON a.id = s.annotator_id \
             WHERE a.name = 'carol' AND a.role = 'annotator' AND s.skill IN ('medical', 'legal')"
        ),
        2
    );
    assert_eq!(
        sql_count(
            &store,
            "SELECT count(*) FROM review_projects WHERE name = 'created-in-the-browser'"
        ),
        1
    );

    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if std::env::var_os("ASSAY_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(repo().join("docs/review-screen.png"), &png).unwrap();
    }
}
