//! The API's handlers. Authentication happened in [`crate::auth::authenticate`]; each handler checks what the
//! caller may do.

use std::sync::Arc;

use assay_store::{AnswerOutcome, HumanAnswer, Refusal, Role};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{new_secret, session_cookie, sha256_hex, Caller};
use crate::error::{ApiError, ApiResult};
use crate::view::ProjectCtx;
use crate::AppState;

type Body<T> = Result<Json<T>, JsonRejection>;
type Id = Result<Path<i64>, PathRejection>;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    token: String,
}

fn annotator_json(a: &assay_store::Annotator) -> Value {
    json!(a)
}

pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Body<LoginBody>,
) -> ApiResult<Response> {
    let client = crate::auth::client_ip(&state, &headers, peer.map(|p| p.0 .0));
    let limiter = state.limiter();
    if let Some(wait) = limiter.blocked(client) {
        return Ok(crate::auth::too_many_failures(wait));
    }
    let Json(body) = body?;
    let hash = sha256_hex(body.token.trim());
    let key = format!("t:{hash}");
    let unknown = || ApiError::new(StatusCode::UNAUTHORIZED, "unknown token");
    if limiter.known_unknown(&key) {
        limiter.failed(client, None);
        return Err(unknown());
    }
    let Some(annotator) = state.store().annotator_by_token(&hash).await? else {
        limiter.failed(client, Some(&key));
        return Err(unknown());
    };
    let session = new_secret();
    let csrf = new_secret();
    let ttl = state.config().session_ttl;
    let expires =
        chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    state
        .store()
        .create_session(
            &sha256_hex(&session),
            annotator.id,
            &csrf,
            &expires.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        )
        .await?;
    let cookie = session_cookie(Some(&session), ttl, crate::auth::is_https(&state, &headers));
    tracing::info!(annotator = %annotator.name, "login");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({
            "annotator": annotator_json(&annotator),
            "role": annotator.role,
            "csrf_token": csrf,
        })),
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(hash) = &caller.session_sha256 {
        state.forget_caller(&format!("s:{hash}"));
        state.store().delete_session(hash).await?;
    }
    let clear = session_cookie(
        None,
        std::time::Duration::ZERO,
        crate::auth::is_https(&state, &headers),
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

pub async fn me(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(json!({
        "annotator": annotator_json(&caller.annotator),
        "role": caller.annotator.role,
        "csrf_token": caller.csrf_token,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAnnotator {
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    skills: Vec<String>,
}

/// Check an annotator's name, role and skills; the message says what is wrong.
pub fn check_annotator(name: &str, skills: &[String]) -> Result<(), String> {
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(ok_char) {
        return Err("a name is 1-64 letters, digits, `.`, `_`, `-` or `@`".into());
    }
    if skills
        .iter()
        .any(|s| s.trim().is_empty() || s.chars().count() > 64)
    {
        return Err("a skill is 1-64 characters".into());
    }
    Ok(())
}

pub async fn create_annotator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewAnnotator>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let Json(body) = body?;
    let role: Role = match &body.role {
        Some(text) => text.parse().map_err(ApiError::invalid)?,
        None => Role::Annotator,
    };
    let skills: Vec<String> = body.skills.iter().map(|s| s.trim().to_string()).collect();
    check_annotator(&body.name, &skills).map_err(ApiError::invalid)?;
    let token = new_secret();
    let Some(annotator) = state
        .store()
        .create_annotator(&body.name, role, &skills, &sha256_hex(&token))
        .await?
    else {
        return Err(ApiError::conflict(format!(
            "an annotator named `{}` exists",
            body.name
        )));
    };
    tracing::info!(annotator = %annotator.name, role = %annotator.role, by = %caller.annotator.name, "annotator added");
    Ok((
        StatusCode::CREATED,
        Json(json!({"annotator": annotator_json(&annotator), "token": token})),
    )
        .into_response())
}

pub async fn list_annotators(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let annotators = state.store().annotators().await?;
    Ok(Json(json!({"annotators": annotators})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    #[serde(default)]
    task_path: Option<String>,
    #[serde(default)]
    task_toml: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

pub async fn create_project(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewProject>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let Json(body) = body?;
    let (spec, import) = crate::tasks::task_of_request(
        state.config().projects_dir.as_deref(),
        body.task_path.as_deref(),
        body.task_toml.as_deref(),
    )?;
    let name = body.name.clone().unwrap_or_else(|| spec.name.clone());
    let (project, _) =
        crate::import::create_project(state.store(), &name, spec, import, &crate::import::Silent)
            .await
            .map_err(import_error)?;
    let ctx = state
        .project(project)
        .await?
        .ok_or_else(|| ApiError::internal("project vanished"))?;
    Ok((
        StatusCode::CREATED,
        Json(progress_json(&state, &ctx).await?),
    )
        .into_response())
}

/// An import error for a client: what a person can act on, without file contents (details go to the log).
fn import_error(e: crate::import::ImportError) -> ApiError {
    use crate::import::ImportError;
    match e {
        ImportError::NameTaken(_) => ApiError::conflict(e.to_string()),
        ImportError::NoReview(_) => ApiError::invalid(e.to_string()),
        ImportError::Store(e) => ApiError::from(e),
        ImportError::TaskVersion { name, message } => ApiError::invalid(format!(
            "task `{name}`: {}",
            crate::tasks::without_source(&message)
        )),
        ImportError::Reader { row, .. } => {
            tracing::error!(error = %e, "import failed");
            ApiError::invalid(format!(
                "importing the dataset failed at row {row} (see the server log); no project was created"
            ))
        }
        ImportError::Rows { first, last, .. } => {
            tracing::error!(error = %e, "import failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("rows {first}-{last} of the dataset could not be written; no project was created"),
            )
        }
        e => {
            tracing::warn!(error = %e, "import failed");
            ApiError::invalid(
                "the dataset could not be read (see the server log); no project was created",
            )
        }
    }
}

async fn progress_json(state: &AppState, ctx: &ProjectCtx) -> ApiResult<Value> {
    let p = &ctx.project;
    let progress = state.store().progress(p).await?;
    let review = p.review();
    let slots = |s: &str| progress.slots.get(s).copied().unwrap_or(0);
    let annotators: Vec<Value> = progress
        .annotators
        .iter()
        .map(|a| {
            let gold: Vec<bool> = progress
                .gold_answers
                .iter()
                .filter(|(id, _, _)| *id == a.id)
                .map(|(_, gold, answer)| ctx.matches_gold(gold, answer))
                .collect();
            let mut v = json!(a);
            v["gold_answered"] = json!(gold.len());
            v["gold_correct"] = json!(gold.iter().filter(|&&c| c).count());
            v
        })
        .collect();
    let mut by_reason = serde_json::Map::new();
    for reason in assay_core::RouteReason::ALL {
        by_reason.insert(
            reason.as_str().into(),
            json!(progress
                .by_reason
                .get(reason.as_str())
                .copied()
                .unwrap_or(0)),
        );
    }
    Ok(json!({
        "id": p.id,
        "name": p.name,
        "task": p.spec.name,
        "kind": p.spec.kind.as_str(),
        "created_at": p.created_at,
        "dataset_rows": progress.dataset_rows,
        "review": {"overlap": review.overlap, "show_suggestion": review.show_suggestion, "skill": review.skill},
        "items": progress.items,
        "by_reason": by_reason,
        "slots": {
            "total": progress.slots.values().sum::<u64>(),
            "open": slots("open"),
            "claimed": slots("claimed"),
            "answered": slots("answered"),
        },
        "items_complete": progress.items_complete,
        "annotators": annotators,
    }))
}

pub async fn list_projects(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for p in state.store().projects().await? {
        if !may_see(&caller, &p) {
            continue;
        }
        let (answered, open) = state.store().my_counts(p.id, caller.annotator.id).await?;
        // Annotators see the projects they can work on or have worked on.
        if !caller.is_admin()
            && answered == 0
            && open == 0
            && !holds_claim(&state, &caller, &p).await?
        {
            continue;
        }
        let progress = state.store().progress(&p).await?;
        out.push(json!({
            "id": p.id,
            "name": p.name,
            "task": p.spec.name,
            "kind": p.spec.kind.as_str(),
            "created_at": p.created_at,
            "items": progress.items,
            "slots": progress.slots.values().sum::<u64>(),
            "answered": progress.slots.get("answered").copied().unwrap_or(0),
            "mine": {"answered": answered, "open": open},
        }));
    }
    Ok(Json(json!({"projects": out})))
}

/// Whether the caller may see the project at all: admins always; annotators when they have the project's skill.
fn may_see(caller: &Caller, p: &assay_store::Project) -> bool {
    caller.is_admin()
        || p.review()
            .skill
            .is_none_or(|skill| caller.annotator.skills.contains(&skill))
}

async fn holds_claim(
    state: &AppState,
    caller: &Caller,
    p: &assay_store::Project,
) -> ApiResult<bool> {
    Ok(state
        .store()
        .held_slot(p.id, caller.annotator.id)
        .await?
        .is_some())
}

async fn project_or_404(state: &AppState, id: i64) -> ApiResult<Arc<ProjectCtx>> {
    state
        .project(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no project {id}")))
}

pub async fn project_progress(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let Path(id) = id?;
    let ctx = project_or_404(&state, id).await?;
    Ok(Json(progress_json(&state, &ctx).await?))
}

/// The caller's assignment with its project, or 404/403.
async fn own_assignment(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> ApiResult<(assay_store::AssignmentView, Arc<ProjectCtx>)> {
    let view = state
        .store()
        .assignment(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no assignment {id}")))?;
    if view.annotator_id != Some(caller.annotator.id) {
        return Err(ApiError::forbidden("this assignment is not yours"));
    }
    let ctx = project_or_404(state, view.project_id).await?;
    state.remember_slot(
        id,
        crate::SlotBrief {
            project_id: view.project_id,
            annotator_id: caller.annotator.id,
            suggestion_shown: ctx.shows_suggestion(&view),
        },
    );
    Ok((view, ctx))
}

pub async fn next(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
) -> ApiResult<Response> {
    let Path(id) = id?;
    project_or_404(&state, id).await?;
    match state.writer().claim(id, caller.annotator.id).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(assignment) => {
            let (view, ctx) = own_assignment(&state, &caller, assignment).await?;
            Ok(Json(ctx.view(&view)).into_response())
        }
    }
}

pub async fn assignment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let (view, ctx) = own_assignment(&state, &caller, id).await?;
    Ok(Json(ctx.view(&view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    value: Value,
    duration_ms: u64,
    suggestion_shown: bool,
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::NotFound => ApiError::not_found("no such assignment"),
        Refusal::NotYours => ApiError::forbidden("this assignment is not yours"),
        Refusal::NotClaimed => ApiError::conflict(
            "this assignment is no longer waiting for your answer (answered, skipped or released)",
        ),
        Refusal::AlreadyAnswered => ApiError::conflict("you already answered this item"),
    }
}

pub async fn answer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Body<AnswerBody>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let Json(body) = body?;
    // A slot handed to this caller here needs no read: the writer checks holder and status where it counts.
    let (ctx, shows_suggestion) = match state
        .slot(id)
        .filter(|s| s.annotator_id == caller.annotator.id)
    {
        Some(brief) => (
            project_or_404(&state, brief.project_id).await?,
            brief.suggestion_shown,
        ),
        None => {
            let (view, ctx) = own_assignment(&state, &caller, id).await?;
            if view.status != "claimed" {
                return Err(refusal(Refusal::NotClaimed));
            }
            let shows = ctx.shows_suggestion(&view);
            (ctx, shows)
        }
    };
    let value = ctx.validate(&body.value).map_err(ApiError::invalid)?;
    let outcome = state
        .writer()
        .answer(HumanAnswer {
            assignment_id: id,
            annotator_id: caller.annotator.id,
            annotator: caller.annotator.name.clone(),
            value,
            duration_ms: body.duration_ms.min(i64::MAX as u64) as i64,
            suggestion_shown: body.suggestion_shown && shows_suggestion,
        })
        .await?;
    match outcome {
        AnswerOutcome::Answered { annotation_id } => Ok(Json(json!({
            "assignment_id": id,
            "annotation_id": annotation_id,
            "status": "answered",
        }))),
        AnswerOutcome::Refused(r) => Err(refusal(r)),
    }
}

pub async fn skip(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    own_assignment(&state, &caller, id).await?;
    state
        .writer()
        .skip(id, caller.annotator.id)
        .await?
        .map_err(refusal)?;
    Ok(Json(json!({"assignment_id": id, "status": "skipped"})))
}

pub async fn undo(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    match state.writer().undo(caller.annotator.id).await? {
        Some(id) => Ok(Json(json!({"assignment_id": id}))),
        None => Err(ApiError::not_found("nothing to undo")),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub async fn index() -> Response {
    match crate::asset("index.html") {
        Some(bytes) => ([(header::CONTENT_TYPE, content_type("index.html"))], bytes).into_response(),
        None => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>assay review</title><p>The review UI was not built into this binary.</p>",
        )
            .into_response(),
    }
}

pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found("no such API path").into_response();
    }
    let rel = path
        .strip_prefix("/ui/")
        .unwrap_or(path.trim_start_matches('/'));
    match crate::asset(rel) {
        Some(bytes) => ([(header::CONTENT_TYPE, content_type(rel))], bytes).into_response(),
        None => ApiError::not_found("not found").into_response(),
    }
}

pub async fn method_not_allowed() -> Response {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response()
}
