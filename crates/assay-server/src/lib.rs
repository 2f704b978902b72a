//! The review server behind `assay serve`: machines label everything, people answer what the machine is unsure
//! of, and every human answer is stored as an annotation next to the machine's.
//!
//! [`router`] builds the axum app: a JSON API under `/api/` (see `API.md` in this crate) and the review UI from
//! `ui/`, embedded in the binary. Every request but `GET /api/health` and `POST /api/login` is authenticated
//! ([`auth`]); claims and answers go through the store's [`assay_store::ReviewWriter`] and are acknowledged only
//! after they committed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = assay_store::Store::open("sqlite:///tmp/assay.db").await?;
//! let state = assay_server::AppState::new(store, assay_server::ServerConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! assay_server::serve(listener, state).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod error;
mod handlers;
pub mod import;
pub mod tasks;
pub mod view;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use assay_store::{ProjectId, ReviewWriter, Store};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use error::{ApiError, ApiResult};
pub use handlers::check_annotator;
use view::ProjectCtx;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1 << 20;

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// How long a claimed slot waits for its answer before it goes back to the pool.
    pub claim_lease: Duration,
    /// The only folder whose task files (and the files they name) `POST /api/projects` may read (`task_path`);
    /// `None`: tasks come only as text (`task_toml`).
    pub projects_dir: Option<std::path::PathBuf>,
    /// Believe the proxy in front: `X-Forwarded-Proto` (for `Secure` cookies) and `X-Forwarded-For` (whom the
    /// failure limit counts).
    pub trust_proxy: bool,
    /// Always mark the session cookie `Secure` (the server is reached over HTTPS only).
    pub secure_cookies: bool,
    /// Longest a request may take, reading its body included; then 408.
    pub request_timeout: Duration,
    /// Longest a connection may take to send a request's headers (idle keep-alive connections included); then it
    /// is closed.
    pub header_read_timeout: Duration,
    /// Failed authentication attempts (unknown tokens or sessions, failed logins) a client may make per minute
    /// before it is answered 429; 0: no limit.
    pub auth_failures_per_minute: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            claim_lease: Duration::from_secs(30 * 60),
            projects_dir: None,
            trust_proxy: false,
            secure_cookies: false,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            auth_failures_per_minute: 30,
        }
    }
}

/// Shared state of the server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    writer: ReviewWriter,
    config: ServerConfig,
    limiter: auth::FailureLimiter,
    projects: RwLock<HashMap<ProjectId, Arc<ProjectCtx>>>,
    /// Recently seen credentials (token or session hash) and whom they name, so that most requests skip a query.
    callers: RwLock<HashMap<String, (auth::Caller, std::time::Instant)>>,
    /// What an answer needs to know about a slot handed out here (its project and whether the suggestion showed).
    slots: RwLock<HashMap<assay_store::AssignmentId, SlotBrief>>,
}

/// The facts of a slot that do not change once it is routed, plus who it was handed to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotBrief {
    pub project_id: ProjectId,
    pub annotator_id: assay_store::AnnotatorId,
    pub suggestion_shown: bool,
}

/// How long a credential stays in the cache (a deleted session may work this long after logout elsewhere; a logout
/// through this server drops it at once).
const CALLER_TTL: Duration = Duration::from_secs(30);

/// Most slots remembered; the memory is cleared when it is full.
const SLOTS_REMEMBERED: usize = 1 << 20;

impl AppState {
    /// State over a store. Must be called inside a Tokio runtime (it starts the store's review writer).
    pub fn new(store: Store, config: ServerConfig) -> Self {
        let writer = store.review_writer();
        Self {
            inner: Arc::new(Inner {
                store,
                writer,
                limiter: auth::FailureLimiter::new(config.auth_failures_per_minute),
                config,
                projects: RwLock::new(HashMap::new()),
                callers: RwLock::new(HashMap::new()),
                slots: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The writer of claims and answers.
    pub fn writer(&self) -> &ReviewWriter {
        &self.inner.writer
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Failed attempts and unknown credentials.
    pub(crate) fn limiter(&self) -> &auth::FailureLimiter {
        &self.inner.limiter
    }

    pub(crate) fn cached_caller(&self, key: &str) -> Option<auth::Caller> {
        let callers = self.inner.callers.read().expect("caller cache lock");
        callers
            .get(key)
            .filter(|(_, at)| at.elapsed() < CALLER_TTL)
            .map(|(c, _)| c.clone())
    }

    pub(crate) fn remember_caller(&self, key: String, caller: &auth::Caller) {
        let mut callers = self.inner.callers.write().expect("caller cache lock");
        if callers.len() > 100_000 {
            callers.retain(|_, (_, at)| at.elapsed() < CALLER_TTL);
        }
        callers.insert(key, (caller.clone(), std::time::Instant::now()));
    }

    pub(crate) fn forget_caller(&self, key: &str) {
        self.inner
            .callers
            .write()
            .expect("caller cache lock")
            .remove(key);
    }

    pub(crate) fn slot(&self, id: assay_store::AssignmentId) -> Option<SlotBrief> {
        self.inner
            .slots
            .read()
            .expect("slot cache lock")
            .get(&id)
            .copied()
    }

    pub(crate) fn remember_slot(&self, id: assay_store::AssignmentId, brief: SlotBrief) {
        let mut slots = self.inner.slots.write().expect("slot cache lock");
        if slots.len() >= SLOTS_REMEMBERED {
            slots.clear();
        }
        slots.insert(id, brief);
    }

    /// A project with its renderer, cached (projects do not change once created, but their dataset does).
    pub(crate) async fn project(&self, id: ProjectId) -> ApiResult<Option<Arc<ProjectCtx>>> {
        if let Some(ctx) = self
            .inner
            .projects
            .read()
            .expect("project cache lock")
            .get(&id)
            .filter(|c| c.project.run_id.is_some())
        {
            return Ok(Some(ctx.clone()));
        }
        let Some(project) = self.store().project(id).await? else {
            return Ok(None);
        };
        let ctx = Arc::new(ProjectCtx::new(project).map_err(ApiError::internal)?);
        self.inner
            .projects
            .write()
            .expect("project cache lock")
            .insert(id, ctx.clone());
        Ok(Some(ctx))
    }
}

/// The whole app: API, UI and the middleware that authenticates, limits bodies and times requests out.
pub fn router(state: AppState) -> Router {
    let timeout = state.config().request_timeout;
    Router::new()
        .route("/api/health", get(handlers::health))
        .route("/api/login", post(handlers::login))
        .route("/api/logout", post(handlers::logout))
        .route("/api/me", get(handlers::me))
        .route(
            "/api/annotators",
            get(handlers::list_annotators).post(handlers::create_annotator),
        )
        .route(
            "/api/projects",
            get(handlers::list_projects).post(handlers::create_project),
        )
        .route("/api/projects/{id}", get(handlers::project_progress))
        .route("/api/projects/{id}/next", get(handlers::next))
        .route("/api/assignments/{id}", get(handlers::assignment))
        .route("/api/assignments/{id}/answer", post(handlers::answer))
        .route("/api/assignments/{id}/skip", post(handlers::skip))
        .route("/api/undo", post(handlers::undo))
        .route("/", get(handlers::index))
        .fallback(handlers::fallback)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serve until Ctrl-C (or SIGTERM), releasing stale claims every minute. In-flight requests finish first.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    serve_until(listener, state, shutdown_signal()).await
}

/// [`serve`] until `shutdown` completes. Connections are served by hyper directly (not `axum::serve`) for its
/// header-read timeout: a client that opens a connection and sends its headers slowly, or not at all, is cut off
/// after [`ServerConfig::header_read_timeout`]. Each request knows its peer (`ConnectInfo<SocketAddr>`).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let sweeper = state.clone();
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let lease = chrono::Duration::from_std(sweeper.config().claim_lease)
                .unwrap_or(chrono::Duration::minutes(30));
            let cutoff =
                (chrono::Utc::now() - lease).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            match sweeper.writer().release_stale(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "stale claims back in the pool"),
                Err(e) => tracing::warn!(error = %e, "releasing stale claims failed"),
            }
        }
    });
    let config = state.config().clone();
    let app = router(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            },
        );
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
        });
    }
    drop(listener);
    sweep.abort();
    // In-flight requests finish (each within the request timeout); idle connections close now.
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(config.request_timeout + Duration::from_secs(1)) => {
            tracing::warn!("connections still open at shutdown were cut");
        },
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// An embedded UI file by its path under `ui/`.
pub fn asset(path: &str) -> Option<&'static [u8]> {
    assets::ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}
