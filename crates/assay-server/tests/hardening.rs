//! Issue 11, "Hardening": regression tests for the review server and its store, through `Router::oneshot` (and a
//! real socket for the header-read timeout), on SQLite and, where the store's behaviour is at stake, PostgreSQL.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assay_server::{router, AppState, ServerConfig};
use assay_store::Store;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-token-for-tests";

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
    text: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        json,
        text,
    }
}

fn request(method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap()
}

async fn get(app: &Router, path: &str, token: &str) -> Reply {
    send(app, request(Method::GET, path, Some(token), None)).await
}

async fn post(app: &Router, path: &str, token: Option<&str>, body: Value) -> Reply {
    send(app, request(Method::POST, path, token, Some(&body))).await
}

async fn start_with(url: &str, config: ServerConfig) -> (Router, Store) {
    let store = Store::open(url).await.unwrap();
    store
        .create_annotator(
            "root",
            assay_store::Role::Admin,
            &[],
            &assay_server::auth::sha256_hex(ADMIN),
        )
        .await
        .unwrap()
        .unwrap();
    (router(AppState::new(store.clone(), config)), store)
}

fn in_dir(dir: &Path) -> ServerConfig {
    ServerConfig {
        projects_dir: Some(dir.to_path_buf()),
        ..ServerConfig::default()
    }
}

async fn add_annotator(app: &Router, name: &str, skills: &[&str]) -> String {
    let r = post(
        app,
        "/api/annotators",
        Some(ADMIN),
        json!({"name": name, "skills": skills}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["token"].as_str().unwrap().to_string()
}

/// `rows` as `rows.jsonl` in `dir`, each with a model label of confidence 0.5, and a classify task over them with
/// a gold column, routing everything below 0.6 to `overlap` people.
fn write_task(dir: &Path, name: &str, rows: &[Value], overlap: u32) -> std::path::PathBuf {
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r.get("assay").is_none() {
                r["assay"] =
                    json!({"label": "ham", "confidence": 0.5, "distribution": {"ham": 0.5}});
            }
            r.to_string()
        })
        .collect();
    std::fs::write(dir.join("rows.jsonl"), lines.join("\n") + "\n").unwrap();
    let task = format!(
        "name = \"{name}\"\ntype = \"classify\"\ndataset = \"rows.jsonl\"\ninput = \"{{{{ text }}}}\"\n\
         gold = \"gold\"\nlabels = [\"ham\", \"spam\"]\n[review]\nconfidence-below = 0.6\noverlap = {overlap}\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, task).unwrap();
    path
}

fn sqlite(dir: &tempfile::TempDir) -> String {
    dir.path().join("store.db").display().to_string()
}

async fn postgres() -> String {
    assay_store::testing::fresh_postgres_database().await
}

// ---- 1. Import loses rows silently ----------------------------------------------------------------------------

async fn import_takes_every_row_or_none(url: &str, engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<Value> = (0..30).map(|i| json!({"text": format!("m{i}")})).collect();
    // A model SHA-256 whose 12th byte falls inside a character used to kill the reader thread silently.
    rows[5]["assay"] = json!({"label": "ham", "confidence": 0.5,
        "provenance": {"annotator": "m", "model_sha256": "aéééééééééééé"}});
    let task = write_task(dir.path(), "every-row", &rows, 1);
    let (app, store) = start_with(url, in_dir(dir.path())).await;
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_path": task.display().to_string()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["dataset_rows"], 30, "{}", r.json);
    assert_eq!(r.json["items"], 30, "{}", r.json);

    // A failure in the middle (here: the database refuses row 8) fails the import and leaves no project.
    let other = tempfile::tempdir().unwrap();
    let rows: Vec<Value> = (0..12).map(|i| json!({"text": format!("n{i}")})).collect();
    let task = write_task(other.path(), "half-imported", &rows, 1);
    let std_dir = other.path().to_path_buf();
    let (app, store) = if engine == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{url}"))
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.data LIKE '%\"n7\"%'
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
        drop(store);
        (
            router(AppState::new(
                Store::open(url).await.unwrap(),
                in_dir(&std_dir),
            )),
            Store::open(url).await.unwrap(),
        )
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::raw_sql(
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN
               IF NEW.data LIKE '%\"n7\"%' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER boom BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION boom();",
        )
        .execute(&pool)
        .await
        .unwrap();
        (
            router(AppState::new(store.clone(), in_dir(&std_dir))),
            store,
        )
    };
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_path": task.display().to_string()}),
    )
    .await;
    assert!(r.status.is_server_error() || r.status.is_client_error());
    let message = r.json["error"].as_str().unwrap_or_default();
    assert!(message.contains("rows 1-12"), "{}", r.json);
    assert!(
        store
            .project_by_name("half-imported")
            .await
            .unwrap()
            .is_none(),
        "a failed import left a project behind"
    );
    let r = get(&app, "/api/projects", ADMIN).await;
    let names: Vec<&str> = r.json["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["every-row"]);
}

#[tokio::test]
async fn issue_11_import_takes_every_row_or_none_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    import_takes_every_row_or_none(&sqlite(&dir), "sqlite").await;
}

#[tokio::test]
async fn issue_11_import_takes_every_row_or_none_on_postgres() {
    import_takes_every_row_or_none(&postgres().await, "postgres").await;
}

// ---- 3. Gold answers shown to annotators ---------------------------------------------------------------------

#[tokio::test]
async fn issue_11_gold_column_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    // No `text` column: the template cannot render, and the row is shown column by column.
    let rows = [json!({"body": "free prize", "gold": "spam-is-the-answer"})];
    let task = write_task(dir.path(), "gold-hidden", &rows, 1);
    let (app, _store) = start_with(&sqlite(&dir), in_dir(dir.path())).await;
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_path": task.display().to_string()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let project = r.json["id"].as_i64().unwrap();
    let alice = add_annotator(&app, "alice", &[]).await;
    let r = get(&app, &format!("/api/projects/{project}/next"), &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["fields"],
        json!([{"name": "body", "label": "body", "text": "free prize"}])
    );
    assert!(!r.text.contains("spam-is-the-answer"), "{}", r.text);
}

// ---- 4. The admin API reads any file the server can read -----------------------------------------------------

#[tokio::test]
async fn issue_11_task_paths_stay_in_projects_dir() {
    let projects = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.toml");
    std::fs::write(&secret, "password = hunter2-outside\n").unwrap();
    let rows = [json!({"text": "hello"})];
    let inside = write_task(projects.path(), "inside", &rows, 1);
    let (app, _store) = start_with(&sqlite(&projects), ServerConfig::default()).await;
    // Without a projects directory the API reads no files at all.
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_path": inside.display().to_string()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(r.json["error"].as_str().unwrap().contains("task_toml"));
    // An uploaded task may not name an example file either.
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_toml": format!(
            "name = \"x\"\ntype = \"classify\"\ninput = \"{{{{ t }}}}\"\nlabels = [\"a\", \"b\"]\n\
             [examples-from]\npath = \"{}\"\nlabel-column = \"l\"\n[review]\n",
            secret.display()
        )}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(!r.text.contains("hunter2"), "{}", r.text);

    let dir = tempfile::tempdir().unwrap();
    let (app, _store) = start_with(&sqlite(&dir), in_dir(projects.path())).await;
    // Outside the directory, absolute or through `..`, whether the file exists or not: 403, nothing read.
    let escape = format!(
        "../{}/secret.toml",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    for path in [
        secret.display().to_string(),
        escape,
        "/etc/passwd".into(),
        "/no/such/file.toml".into(),
    ] {
        let r = post(
            &app,
            "/api/projects",
            Some(ADMIN),
            json!({"task_path": path}),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.json);
        assert!(
            !r.text.contains("hunter2") && !r.text.contains("root:"),
            "{}",
            r.text
        );
    }
    // A task inside that names a dataset or an example file outside: 403.
    std::fs::write(
        projects.path().join("sneaky.toml"),
        format!(
            "name = \"sneaky\"\ntype = \"classify\"\ndataset = \"{}\"\ninput = \"{{{{ t }}}}\"\n\
             labels = [\"a\", \"b\"]\n[review]\n",
            secret.display()
        ),
    )
    .unwrap();
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_path": "sneaky.toml"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(
        r.json["error"].as_str().unwrap().contains("dataset"),
        "{}",
        r.json
    );
    // A file inside that is not TOML: the error names the line, never its text.
    std::fs::write(
        projects.path().join("notes.toml"),
        "name = \"n\"\napi-key = sk-live-123456\n",
    )
    .unwrap();
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_path": "notes.toml"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    let message = r.json["error"].as_str().unwrap();
    assert!(message.contains("line 2"), "{message}");
    assert!(!r.text.contains("sk-live"), "{}", r.text);
    assert!(
        !r.text.contains(&projects.path().display().to_string()),
        "{}",
        r.text
    );
    // Inside, relative to the directory: created.
    let r = post(
        &app,
        "/api/projects",
        Some(ADMIN),
        json!({"task_path": "inside.toml"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["dataset_rows"], 1);
}

// ---- 10. A slot stays claimed forever --------------------------------------------------------------------------

async fn already_answered_slot_is_released(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Value> = (0..3).map(|i| json!({"text": format!("m{i}")})).collect();
    let task = write_task(dir.path(), "shared", &rows, 2);
    let (app, store) = start_with(url, in_dir(dir.path())).await;
    // Two projects over the same task version and records.
    let mut projects = Vec::new();
    for name in ["first", "second"] {
        let r = post(
            &app,
            "/api/projects",
            Some(ADMIN),
            json!({"task_path": task.display().to_string(), "name": name}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        projects.push(r.json["id"].as_i64().unwrap());
    }
    let alice = add_annotator(&app, "alice", &[]).await;
    let answer = json!({"value": "spam", "duration_ms": 5, "suggestion_shown": true});
    let r = get(&app, &format!("/api/projects/{}/next", projects[0]), &alice).await;
    let first = r.json["assignment_id"].as_i64().unwrap();
    let record_text = r.json["fields"][0]["text"].clone();
    let r = post(
        &app,
        &format!("/api/assignments/{first}/answer"),
        Some(&alice),
        answer.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    // The second project hands her the same record; her answer is refused as already given...
    let r = get(&app, &format!("/api/projects/{}/next", projects[1]), &alice).await;
    assert_eq!(r.json["fields"][0]["text"], record_text);
    let held = r.json["assignment_id"].as_i64().unwrap();
    let r = post(
        &app,
        &format!("/api/assignments/{held}/answer"),
        Some(&alice),
        answer.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    // ...and the slot is free again for someone else, and she moves on to another item.
    let view = store.assignment(held).await.unwrap().unwrap();
    assert_eq!((view.status.as_str(), view.annotator_id), ("open", None));
    let r = get(&app, &format!("/api/projects/{}/next", projects[1]), &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_ne!(r.json["assignment_id"].as_i64(), Some(held));
    assert_ne!(r.json["fields"][0]["text"], record_text);
    let bob = add_annotator(&app, "bob", &[]).await;
    let mut bob_got = Vec::new();
    loop {
        let r = get(&app, &format!("/api/projects/{}/next", projects[1]), &bob).await;
        if r.status == StatusCode::NO_CONTENT {
            break;
        }
        let id = r.json["assignment_id"].as_i64().unwrap();
        bob_got.push(id);
        let r = post(
            &app,
            &format!("/api/assignments/{id}/answer"),
            Some(&bob),
            answer.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
    assert_eq!(
        bob_got.len(),
        3,
        "one slot of every item, the released one included"
    );
    let p = get(&app, &format!("/api/projects/{}", projects[1]), ADMIN).await;
    assert_eq!(
        p.json["slots"]["claimed"], 1,
        "only alice's current claim: {}",
        p.json
    );
}

#[tokio::test]
async fn issue_11_already_answered_slot_is_released_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    already_answered_slot_is_released(&sqlite(&dir)).await;
}

#[tokio::test]
async fn issue_11_already_answered_slot_is_released_on_postgres() {
    already_answered_slot_is_released(&postgres().await).await;
}

// ---- 11. Server hardening ----------------------------------------------------------------------------------------

#[tokio::test]
async fn issue_11_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        request_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (app, _store) = start_with(&sqlite(&dir), config).await;
    // A body that starts and never ends.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/annotators")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::new(Slow::default()))
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), send(&app, req))
        .await
        .expect("the server gave up on the request");
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    assert!(r.json["error"].is_string(), "{}", r.text);
}

/// A request body that sends `{"name": ` and then nothing, forever.
#[derive(Default)]
struct Slow {
    sent: bool,
}

impl hyper::body::Body for Slow {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.sent {
            std::task::Poll::Pending
        } else {
            self.sent = true;
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(
                axum::body::Bytes::from_static(b"{\"name\": "),
            ))))
        }
    }
}

#[tokio::test]
async fn issue_11_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&sqlite(&dir)).await.unwrap();
    let config = ServerConfig {
        header_read_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(assay_server::serve_until(
        listener,
        AppState::new(store, config),
        async {
            let _ = stopped.await;
        },
    ));
    // A whole request is answered...
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    ok.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // ...a connection that sends half its headers and waits is closed, and so is one that sends nothing.
    for partial in [&b"GET /api/health HTTP/1.1\r\nhost: x\r\n"[..], b""] {
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(partial).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the connection stayed open");
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
            "{rest}"
        );
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn issue_11_failed_auth_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        auth_failures_per_minute: 3,
        ..ServerConfig::default()
    };
    let (app, _store) = start_with(&sqlite(&dir), config).await;
    // A known token, seen once, keeps working whatever strangers do.
    assert_eq!(get(&app, "/api/me", ADMIN).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            get(&app, "/api/me", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = get(&app, "/api/me", "another-guess").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert!(r.json["error"].is_string());
    let r = post(&app, "/api/login", None, json!({"token": "guess"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
    assert_eq!(get(&app, "/api/me", ADMIN).await.status, StatusCode::OK);

    // Failed logins count as well.
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        auth_failures_per_minute: 2,
        ..ServerConfig::default()
    };
    let (app, _store) = start_with(&sqlite(&dir), config).await;
    for _ in 0..2 {
        let r = post(&app, "/api/login", None, json!({"token": "guess"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = post(&app, "/api/login", None, json!({"token": ADMIN})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
}

#[tokio::test]
async fn issue_11_secure_cookie_behind_a_trusted_proxy() {
    for (trust_proxy, proto, secure) in [
        (true, Some("https"), true),
        (true, Some("http"), false),
        (true, None, false),
        (false, Some("https"), false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            trust_proxy,
            ..ServerConfig::default()
        };
        let (app, _store) = start_with(&sqlite(&dir), config).await;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/api/login")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(proto) = proto {
            req = req.header("x-forwarded-proto", proto);
        }
        let r = send(
            &app,
            req.body(Body::from(json!({"token": ADMIN}).to_string()))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert_eq!(
            cookie.contains("Secure"),
            secure,
            "{trust_proxy} {proto:?}: {cookie}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        secure_cookies: true,
        ..ServerConfig::default()
    };
    let (app, _store) = start_with(&sqlite(&dir), config).await;
    let r = post(&app, "/api/login", None, json!({"token": ADMIN})).await;
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Secure"));
}

#[tokio::test]
async fn issue_11_annotators_see_their_projects() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [json!({"text": "a"})];
    let open = write_task(dir.path(), "open", &rows, 1);
    std::fs::write(
        dir.path().join("medical.toml"),
        std::fs::read_to_string(&open)
            .unwrap()
            .replace("name = \"open\"", "name = \"medical\"")
            + "skill = \"medical\"\n",
    )
    .unwrap();
    let (app, _store) = start_with(&sqlite(&dir), in_dir(dir.path())).await;
    for (task, name) in [
        ("open.toml", None),
        ("medical.toml", None),
        ("open.toml", Some("done")),
    ] {
        let r = post(
            &app,
            "/api/projects",
            Some(ADMIN),
            json!({"task_path": task, "name": name}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    }
    let names = |r: &Reply| -> Vec<String> {
        r.json["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&get(&app, "/api/projects", ADMIN).await),
        ["open", "medical", "done"]
    );
    let medic = add_annotator(&app, "medic", &["medical"]).await;
    let lay = add_annotator(&app, "lay", &[]).await;
    // `done`'s one item is answered by someone else: nothing left there for the others.
    let r = get(&app, "/api/projects/3/next", &medic).await;
    let id = r.json["assignment_id"].as_i64().unwrap();
    let r = post(
        &app,
        &format!("/api/assignments/{id}/answer"),
        Some(&medic),
        json!({"value": "ham", "duration_ms": 1, "suggestion_shown": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(names(&get(&app, "/api/projects", &lay).await), ["open"]);
    assert_eq!(
        names(&get(&app, "/api/projects", &medic).await),
        ["open", "medical", "done"],
        "the medic has the skill, and answered in `done`"
    );
}

// ---- Fuzzing (issue 11 §3): random bodies never panic the server and get a JSON answer ------------------------

/// Cases per endpoint.
const FUZZ_CASES: u32 = 64;

/// Random JSON: scalars, and arrays and objects of them a few levels deep, keys often the API's own.
fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let key = prop_oneof![
        Just("token".to_string()),
        Just("name".to_string()),
        Just("role".to_string()),
        Just("skills".to_string()),
        Just("task_path".to_string()),
        Just("task_toml".to_string()),
        Just("value".to_string()),
        Just("duration_ms".to_string()),
        Just("suggestion_shown".to_string()),
        "[a-z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(json!("ham")),
        Just(json!("name = \"t\"\ntype = \"classify\"\n[review]\n")),
        Just(json!("../../etc/passwd")),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: JSON, JSON cut short, or arbitrary bytes.
fn arb_body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    prop_oneof![
        4 => arb_json().prop_map(|v| v.to_string().into_bytes()),
        1 => (arb_json(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let n = cut.index(text.len() + 1);
            text[..n].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn issue_11_fuzz_json_bodies() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "name = 1\n").unwrap();
    let rows = [json!({"text": "a"}), json!({"text": "b"})];
    let task = write_task(dir.path(), "fuzz", &rows, 1);
    let (app, annotator, slot) = rt.block_on(async {
        let (app, _store) = start_with(&sqlite(&dir), in_dir(dir.path())).await;
        let r = post(
            &app,
            "/api/projects",
            Some(ADMIN),
            json!({"task_path": task.display().to_string()}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let token = add_annotator(&app, "fuzzer", &[]).await;
        let r = get(&app, "/api/projects/1/next", &token).await;
        let slot = r.json["assignment_id"].as_i64().unwrap();
        (app, token, slot)
    });
    let endpoints = [
        ("/api/login".to_string(), None),
        ("/api/annotators".to_string(), Some(ADMIN)),
        ("/api/projects".to_string(), Some(ADMIN)),
        (
            format!("/api/assignments/{slot}/answer"),
            Some(annotator.as_str()),
        ),
        (
            format!("/api/assignments/{slot}/skip"),
            Some(annotator.as_str()),
        ),
        ("/api/undo".to_string(), Some(annotator.as_str())),
        ("/api/logout".to_string(), Some(annotator.as_str())),
    ];
    let cases = AtomicUsize::new(0);
    for (path, token) in &endpoints {
        let mut runner = TestRunner::new(Config {
            cases: FUZZ_CASES,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(arb_body(), proptest::bool::ANY), |(body, json_type)| {
                cases.fetch_add(1, Ordering::Relaxed);
                let mut req = Request::builder().method(Method::POST).uri(path.as_str());
                if let Some(token) = token {
                    req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
                }
                if json_type {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                }
                let r = rt.block_on(send(&app, req.body(Body::from(body)).unwrap()));
                let ok = r.status.is_success() || r.status.is_client_error();
                if !ok {
                    return Err(TestCaseError::fail(format!(
                        "{path}: {} {}",
                        r.status, r.text
                    )));
                }
                if r.status.is_client_error() && !r.json["error"].is_string() {
                    return Err(TestCaseError::fail(format!(
                        "{path}: {} without a JSON error: {}",
                        r.status, r.text
                    )));
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let cases = cases.load(Ordering::Relaxed);
    eprintln!("fuzzed {cases} bodies over {} endpoints", endpoints.len());
    assert!(cases >= FUZZ_CASES as usize * endpoints.len());
}
