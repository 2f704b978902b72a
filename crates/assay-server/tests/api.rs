//! The review API through `Router::oneshot`, without a socket, on SQLite and on PostgreSQL: every test body runs
//! once per engine.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use assay_server::{router, AppState, ServerConfig};
use assay_store::Store;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// Session cookie value and CSRF token (if sent).
    Cookie(&'a str, Option<&'a str>),
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => req = req.header(header::AUTHORIZATION, format!("Bearer {token}")),
        Auth::Cookie(session, csrf) => {
            req = req.header(header::COOKIE, format!("assay_session={session}"));
            if let Some(csrf) = csrf {
                req = req.header("x-csrf-token", csrf);
            }
        }
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        json,
    }
}

async fn get(app: &Router, path: &str, auth: Auth<'_>) -> Reply {
    call(app, Method::GET, path, auth, None).await
}

async fn post(app: &Router, path: &str, auth: Auth<'_>, body: Value) -> Reply {
    call(app, Method::POST, path, auth, Some(body)).await
}

/// A classify dataset as `assay label` writes it: rows 0-3 unsure (0.50-0.58), rows 4-19 sure (0.90+), rows 18
/// and 19 with a gold label.
fn write_classify_project(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for i in 0..20u32 {
        let confidence = if i < 4 {
            0.5 + f64::from(i) * 0.025
        } else {
            0.9 + f64::from(i) * 0.004
        };
        let label = if i % 3 == 0 { "spam" } else { "ham" };
        let mut row = json!({
            "text": format!("message {i}"),
            "assay": {
                "label": label,
                "confidence": confidence,
                "distribution": {label: confidence},
                "provenance": {"annotator": "tiny", "model_sha256": "00112233445566778899"}
            }
        });
        if i >= 18 {
            row["gold"] = json!(if i == 18 { "ham" } else { "1" });
        }
        lines.push(row.to_string());
    }
    std::fs::write(dir.join("rows.jsonl"), lines.join("\n") + "\n").unwrap();
    let task = r#"
name = "spam-review"
type = "classify"
dataset = "rows.jsonl"
input = "{{ text }}"
gold = "gold"
guidelines = "Spam is unsolicited."
labels = ["ham", { name = "spam", aliases = ["1"] }]

[review]
confidence-below = 0.6
audit-rate = 0.25
gold-rate = 0.2
overlap = 2
"#;
    let path = dir.join("task.toml");
    std::fs::write(&path, task).unwrap();
    path
}

async fn start(url: &str, projects_dir: Option<&Path>) -> (Router, Store, String) {
    let store = Store::open(url).await.unwrap();
    let admin_token = "admin-token-for-tests";
    store
        .create_annotator(
            "root",
            assay_store::Role::Admin,
            &[],
            &assay_server::auth::sha256_hex(admin_token),
        )
        .await
        .unwrap()
        .unwrap();
    let config = ServerConfig {
        projects_dir: projects_dir.map(Path::to_path_buf),
        ..ServerConfig::default()
    };
    let app = router(AppState::new(store.clone(), config));
    (app, store, admin_token.to_string())
}

async fn add_annotator(app: &Router, admin: &str, name: &str, skills: &[&str]) -> String {
    let r = post(
        app,
        "/api/annotators",
        Auth::Bearer(admin),
        json!({"name": name, "skills": skills}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["token"].as_str().unwrap().to_string()
}

async fn review_api_end_to_end(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let task_path = write_classify_project(dir.path());
    let (app, store, admin) = start(url, Some(dir.path())).await;

    // Health without credentials; everything else, unknown paths included, wants them.
    let r = get(&app, "/api/health", Auth::None).await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    for path in [
        "/api/me",
        "/api/projects",
        "/api/no-such-thing",
        "/api/assignments/1",
    ] {
        let r = get(&app, path, Auth::None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(r.json["error"].is_string(), "{path}: {}", r.json);
    }
    let r = post(&app, "/api/undo", Auth::None, json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get(&app, "/api/me", Auth::Bearer("wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Authenticated, an unknown path is a JSON 404.
    let r = get(&app, "/api/no-such-thing", Auth::Bearer(&admin)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json["error"].is_string());

    // Admin sets up people and the project.
    let alice = add_annotator(&app, &admin, "alice", &[]).await;
    let bob = add_annotator(&app, &admin, "bob", &[]).await;
    let carol = add_annotator(&app, &admin, "carol", &[]).await;
    let r = post(
        &app,
        "/api/annotators",
        Auth::Bearer(&admin),
        json!({"name": "alice"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = post(
        &app,
        "/api/annotators",
        Auth::Bearer(&admin),
        json!({"name": "x y"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(
        &app,
        "/api/projects",
        Auth::Bearer(&admin),
        json!({"task_path": task_path.display().to_string()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let project = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["dataset_rows"], 20);
    assert_eq!(r.json["items"], 10);
    assert_eq!(
        r.json["by_reason"],
        json!({"gold": 2, "low-confidence": 4, "inconsistent": 0, "disagree": 0, "audit": 4})
    );
    assert_eq!(r.json["slots"]["total"], 20);

    // Routing picked exactly the unsure rows, the two gold rows, and four of the sure non-gold rows.
    let items = store.review_items(project).await.unwrap();
    let of = |reason: &str| -> Vec<u64> {
        items
            .iter()
            .filter(|(_, r)| r == reason)
            .map(|(i, _)| *i)
            .collect()
    };
    assert_eq!(of("low-confidence"), vec![0, 1, 2, 3]);
    assert_eq!(of("gold"), vec![18, 19]);
    assert_eq!(of("audit").len(), 4);
    assert!(of("audit").iter().all(|i| (4..18).contains(i)));

    // Login with the token: a session cookie and a CSRF token.
    let r = post(&app, "/api/login", Auth::None, json!({"token": "nope"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(&app, "/api/login", Auth::None, json!({"token": alice})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["annotator"]["name"], "alice");
    assert_eq!(r.json["role"], "annotator");
    let csrf = r.json["csrf_token"].as_str().unwrap().to_string();
    let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let session = set_cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("assay_session=")
        .unwrap()
        .to_string();
    let r = get(&app, "/api/me", Auth::Cookie(&session, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["csrf_token"], csrf.as_str());
    // A state change by cookie without (or with a wrong) CSRF header is refused; with it, it goes through.
    let r = post(&app, "/api/undo", Auth::Cookie(&session, None), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(
        &app,
        "/api/undo",
        Auth::Cookie(&session, Some("bad")),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(
        &app,
        "/api/undo",
        Auth::Cookie(&session, Some(&csrf)),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing to undo yet");

    // Annotators cannot do admin work.
    let cookie = Auth::Cookie(&session, Some(&csrf));
    assert_eq!(
        get(&app, "/api/annotators", cookie).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            &app,
            "/api/annotators",
            cookie,
            json!({"name": "mallory", "role": "admin"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            &app,
            "/api/projects",
            Auth::Bearer(&bob),
            json!({"task_toml": "x"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&app, &format!("/api/projects/{project}"), cookie)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = get(&app, "/api/projects", cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["projects"][0]["mine"]["open"], 10);

    // Alice's queue starts with the least confident item, with the machine's suggestion.
    let r = get(&app, &format!("/api/projects/{project}/next"), cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let first = r.json["assignment_id"].as_i64().unwrap();
    assert_eq!(r.json["kind"], "classify");
    assert_eq!(r.json["guidelines"], "Spam is unsolicited.");
    assert_eq!(
        r.json["fields"],
        json!([{"name": "input", "label": "Input", "text": "message 0"}])
    );
    assert_eq!(r.json["options"][0]["key"], "1");
    assert_eq!(r.json["options"][1]["value"], "spam");
    assert_eq!(
        r.json["suggestion"],
        json!({"value": "spam", "confidence": 0.5})
    );
    // Asking again gives the same claimed item back.
    let again = get(&app, &format!("/api/projects/{project}/next"), cookie).await;
    assert_eq!(again.json["assignment_id"].as_i64(), Some(first));

    // Bob can neither see nor answer it.
    let r = get(
        &app,
        &format!("/api/assignments/{first}"),
        Auth::Bearer(&bob),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let body = json!({"value": "ham", "duration_ms": 10, "suggestion_shown": true});
    let r = post(
        &app,
        &format!("/api/assignments/{first}/answer"),
        Auth::Bearer(&bob),
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(
        &app,
        &format!("/api/assignments/{first}/skip"),
        Auth::Bearer(&bob),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Alice answers: a value that is not an option is refused; a good one is stored once.
    let r = post(
        &app,
        &format!("/api/assignments/{first}/answer"),
        cookie,
        json!({"value": "eggs", "duration_ms": 10, "suggestion_shown": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    let r = post(
        &app,
        &format!("/api/assignments/{first}/answer"),
        cookie,
        json!({"value": "ham"}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing fields: {}",
        r.json
    );
    let r = post(
        &app,
        &format!("/api/assignments/{first}/answer"),
        cookie,
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "answered");
    let r = post(
        &app,
        &format!("/api/assignments/{first}/answer"),
        cookie,
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Undo gives the slot back to Alice, who answers it again differently.
    let r = post(&app, "/api/undo", cookie, json!({})).await;
    assert_eq!(
        (r.status, r.json["assignment_id"].as_i64()),
        (StatusCode::OK, Some(first))
    );
    let r = get(&app, &format!("/api/assignments/{first}"), cookie).await;
    assert_eq!(
        (r.json["status"].as_str(), &r.json["answer"]),
        (Some("claimed"), &Value::Null)
    );
    let r = get(&app, &format!("/api/projects/{project}/next"), cookie).await;
    assert_eq!(r.json["assignment_id"].as_i64(), Some(first));
    let r = post(
        &app,
        &format!("/api/assignments/{first}/answer"),
        cookie,
        json!({"value": "spam", "duration_ms": 1234, "suggestion_shown": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // Carol skips her first item: it goes back to the pool and is never offered to her again.
    let r = get(
        &app,
        &format!("/api/projects/{project}/next"),
        Auth::Bearer(&carol),
    )
    .await;
    let skipped = r.json["assignment_id"].as_i64().unwrap();
    let r = post(
        &app,
        &format!("/api/assignments/{skipped}/skip"),
        Auth::Bearer(&carol),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = get(
        &app,
        &format!("/api/projects/{project}/next"),
        Auth::Bearer(&carol),
    )
    .await;
    assert_ne!(r.json["assignment_id"].as_i64(), Some(skipped));
    let carol_held = r.json["assignment_id"].as_i64().unwrap();
    let r = post(
        &app,
        &format!("/api/assignments/{carol_held}/skip"),
        Auth::Bearer(&carol),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // Overlap 2: five people at once never share a slot, and every item ends with exactly two answers.
    let dave = add_annotator(&app, &admin, "dave", &[]).await;
    let erin = add_annotator(&app, &admin, "erin", &[]).await;
    let mut workers = Vec::new();
    for token in [alice.clone(), bob.clone(), carol.clone(), dave, erin] {
        let app = app.clone();
        workers.push(tokio::spawn(async move {
            let mut seen: Vec<(i64, bool)> = Vec::new();
            loop {
                let r = get(
                    &app,
                    &format!("/api/projects/{project}/next"),
                    Auth::Bearer(&token),
                )
                .await;
                if r.status == StatusCode::NO_CONTENT {
                    return seen;
                }
                assert_eq!(r.status, StatusCode::OK, "{}", r.json);
                let id = r.json["assignment_id"].as_i64().unwrap();
                let hidden = r.json["suggestion"].is_null();
                let r = post(
                    &app,
                    &format!("/api/assignments/{id}/answer"),
                    Auth::Bearer(&token),
                    json!({"value": "ham", "duration_ms": 500, "suggestion_shown": !hidden}),
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.json);
                seen.push((id, hidden));
            }
        }));
    }
    let mut answered: Vec<(i64, bool)> = Vec::new();
    for w in workers {
        answered.extend(w.await.unwrap());
    }
    let slots: BTreeSet<i64> = answered.iter().map(|a| a.0).collect();
    assert_eq!(slots.len(), answered.len(), "a slot was answered twice");
    assert_eq!(
        answered.len() + 1,
        20,
        "Alice's first answer plus everything the five answered"
    );
    // Suggestions are hidden exactly on audit and gold items.
    for (id, hidden) in &answered {
        let reason = store.assignment(*id).await.unwrap().unwrap().reason;
        assert_eq!(
            *hidden,
            reason.hides_suggestion(),
            "assignment {id} ({reason:?})"
        );
    }
    let r = get(
        &app,
        &format!("/api/projects/{project}"),
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(r.json["slots"]["answered"], 20, "{}", r.json);
    assert_eq!(r.json["items_complete"], 10);
    let alice_row = r.json["annotators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "alice")
        .unwrap()
        .clone();
    assert!(alice_row["answered"].as_u64().unwrap() >= 1);
    let gold_answered: u64 = r.json["annotators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["gold_answered"].as_u64().unwrap())
        .sum();
    assert_eq!(gold_answered, 4, "two gold items, two answers each");
    let gold_correct: u64 = r.json["annotators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["gold_correct"].as_u64().unwrap())
        .sum();
    // Everyone answered "ham": right on row 18 (ham), wrong on row 19 (alias "1" = spam).
    assert_eq!(gold_correct, 2);

    // Everything acknowledged is in the store after reopening it: human annotations beside the model's.
    drop(app);
    let task_id = store.project(project).await.unwrap().unwrap().task_id;
    store_close(store).await;
    let store = Store::open(url).await.unwrap();
    let human = store.review_answers(task_id).await.unwrap();
    assert_eq!(human.len(), 20);
    let mut per_record: HashMap<i64, Vec<String>> = HashMap::new();
    for h in &human {
        per_record
            .entry(h.record_id)
            .or_default()
            .push(h.annotator.clone());
        assert!(
            h.duration_ms.is_some() && h.suggestion_shown.is_some() && h.assignment_id.is_some()
        );
        if matches!(h.reason.as_deref(), Some("audit" | "gold")) {
            assert_eq!(h.suggestion_shown, Some(false));
        }
    }
    assert_eq!(per_record.len(), 10);
    for (record, people) in &per_record {
        let distinct: BTreeSet<&String> = people.iter().collect();
        assert_eq!(
            (people.len(), distinct.len()),
            (2, 2),
            "record {record}: {people:?}"
        );
    }
    let alice_answer = human
        .iter()
        .find(|h| h.annotator == "alice" && h.duration_ms == Some(1234))
        .expect("alice's re-answer after undo");
    assert_eq!(alice_answer.value, json!("spam"));
    let counts: BTreeMap<String, usize> = human.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(h.annotator.clone()).or_default() += 1;
        m
    });
    assert!(!counts.contains_key("root"));

    // What `assay project qc` reads: every routed item with its reason, gold and machine label, and the same
    // 20 answers, on both engines.
    let p = store.project(project).await.unwrap().unwrap();
    let outcomes = store.review_outcomes(&p).await.unwrap();
    assert_eq!(outcomes.iter().map(|o| o.answers.len()).sum::<usize>(), 20);
    assert!(outcomes.iter().all(|o| o.machine.is_some()));
    assert!(outcomes
        .iter()
        .filter(|o| o.reason == "gold")
        .all(|o| o.gold.is_some()));
}

async fn store_close(store: Store) {
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

async fn routing_of_position_inconsistent_pairs(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        (0.9, 0.1, 0.9),   // consistent, sure
        (0.8, 0.7, 0.95),  // the same position won in both orders: inconsistent
        (0.3, 0.8, 0.75),  // consistent, sure enough
        (0.55, 0.5, 0.52), // consistent but unsure
    ];
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (ab, ba, conf))| {
            json!({"prompt": format!("q{i}"), "a": "x", "b": "y",
                   "assay": {"label": "1", "confidence": conf, "distribution": {"1": conf, "2": 1.0 - conf},
                             "preference": {"p_ab": ab, "p_ba": ba, "position_consistent": true}}})
            .to_string()
        })
        .collect();
    std::fs::write(dir.path().join("pairs.jsonl"), lines.join("\n")).unwrap();
    let task = r#"
name = "pairs"
type = "compare"
dataset = "pairs.jsonl"
[compare]
context = "{{ prompt }}"
response-1 = "{{ a }}"
response-2 = "{{ b }}"
[review]
confidence-below = 0.6
skill = "medical"
"#;
    std::fs::write(dir.path().join("task.toml"), task).unwrap();
    let (app, store, admin) = start(url, Some(dir.path())).await;
    let r = post(
        &app,
        "/api/projects",
        Auth::Bearer(&admin),
        json!({"task_path": dir.path().join("task.toml").display().to_string()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let project = r.json["id"].as_i64().unwrap();
    assert_eq!(
        store.review_items(project).await.unwrap(),
        vec![
            (1, "inconsistent".to_string()),
            (3, "low-confidence".to_string())
        ]
    );
    // Only people with the skill get the items.
    let lay = add_annotator(&app, &admin, "lay", &[]).await;
    let medic = add_annotator(&app, &admin, "medic", &["medical"]).await;
    let r = get(
        &app,
        &format!("/api/projects/{project}/next"),
        Auth::Bearer(&lay),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = get(
        &app,
        &format!("/api/projects/{project}/next"),
        Auth::Bearer(&medic),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // Least confident first: row 3 (0.52) before row 1 (0.95).
    assert_eq!(r.json["fields"][0]["text"], "q3");
    assert_eq!(r.json["fields"][1]["label"], "Response 1");
    let keys: Vec<&str> = r.json["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["1", "2", "t"]);
    let id = r.json["assignment_id"].as_i64().unwrap();
    let r = post(
        &app,
        &format!("/api/assignments/{id}/answer"),
        Auth::Bearer(&medic),
        json!({"value": "tie", "duration_ms": 3, "suggestion_shown": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

async fn bodies_and_paths_are_checked(url: &str) {
    let (app, _store, admin) = start(url, None).await;
    // Malformed JSON and a body over the limit are JSON 4xx errors.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/annotators")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let big = "x".repeat(assay_server::BODY_LIMIT + 10);
    let r = post(
        &app,
        "/api/projects",
        Auth::Bearer(&admin),
        json!({"task_toml": big}),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.json);
    let r = post(
        &app,
        "/api/projects",
        Auth::Bearer(&admin),
        json!({"task_toml": "name = 1"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.json["error"].as_str().unwrap().contains("name"),
        "{}",
        r.json
    );
    let r = post(
        &app,
        "/api/projects",
        Auth::Bearer(&admin),
        json!({"task_toml": "name = \"t\"\ntype = \"classify\"\ninput = \"{{ x }}\"\nlabels = [\"a\", \"b\"]\n"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json["error"].as_str().unwrap().contains("[review]"));
    let r = get(&app, "/api/assignments/abc", Auth::Bearer(&admin)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(&app, "/api/assignments/999", Auth::Bearer(&admin)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(&app, "/api/projects/999/next", Auth::Bearer(&admin)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        Method::DELETE,
        "/api/projects",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.json["error"].is_string());
    // The UI is served without credentials, with a strict content security policy.
    let r = get(&app, "/", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    // Logout ends the session.
    let tok = add_annotator(&app, &admin, "leaver", &[]).await;
    let r = post(&app, "/api/login", Auth::None, json!({"token": tok})).await;
    let csrf = r.json["csrf_token"].as_str().unwrap().to_string();
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("assay_session=")
        .to_string();
    let r = post(
        &app,
        "/api/logout",
        Auth::Cookie(&session, Some(&csrf)),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = get(&app, "/api/me", Auth::Cookie(&session, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    dir.path().join("store.db").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_4_review_api_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    review_api_end_to_end(&sqlite_url(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_4_review_api_on_postgres() {
    review_api_end_to_end(&assay_store::testing::fresh_postgres_database().await).await;
}

#[tokio::test]
async fn inconsistent_pairs_and_skills_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    routing_of_position_inconsistent_pairs(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn inconsistent_pairs_and_skills_on_postgres() {
    routing_of_position_inconsistent_pairs(&assay_store::testing::fresh_postgres_database().await)
        .await;
}

#[tokio::test]
async fn bodies_and_paths_are_checked_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    bodies_and_paths_are_checked(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn bodies_and_paths_are_checked_on_postgres() {
    bodies_and_paths_are_checked(&assay_store::testing::fresh_postgres_database().await).await;
}
