//! `assay serve`: the review server (API + UI) over the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;

/// Arguments of `assay serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; put a TLS proxy in front before exposing it.
    #[arg(long, default_value = "127.0.0.1:7878", env = "ASSAY_BIND")]
    bind: SocketAddr,
    /// The folder whose task files `POST /api/projects` may read (`task_path`), with the datasets and example
    /// files they name. Without it the API reads no files: tasks are uploaded as text.
    #[arg(long, env = "ASSAY_PROJECTS_DIR", value_name = "DIR")]
    projects_dir: Option<PathBuf>,
    /// Trust the proxy in front: `X-Forwarded-Proto: https` marks session cookies `Secure`, and
    /// `X-Forwarded-For` names the client for the limit on failed logins.
    #[arg(long, env = "ASSAY_TRUST_PROXY")]
    trust_proxy: bool,
    /// Always mark session cookies `Secure` (clients reach the server over HTTPS only).
    #[arg(long)]
    secure_cookies: bool,
}

/// Run the server until Ctrl-C.
pub fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = settings.open_store(&rt)?;
    let projects_dir = match &args.projects_dir {
        Some(dir) => Some(dir.canonicalize().map_err(|e| crate::commands::Hinted {
            message: format!("projects directory {}: {e}", dir.display()),
            hint: "give an existing folder to `--projects-dir`".into(),
        })?),
        None => None,
    };
    if !args.bind.ip().is_loopback() {
        eprintln!(
            "warning: listening on {} (not loopback): traffic is plain HTTP; put a TLS proxy in front",
            args.bind
        );
    }
    rt.block_on(async move {
        if store
            .annotators()
            .await?
            .iter()
            .all(|a| a.role != assay_store::Role::Admin)
        {
            eprintln!("hint: no admin yet: add one with `assay annotator add NAME --admin`");
        }
        let config = assay_server::ServerConfig {
            projects_dir,
            trust_proxy: args.trust_proxy,
            secure_cookies: args.secure_cookies,
            ..assay_server::ServerConfig::default()
        };
        let state = assay_server::AppState::new(store, config);
        let listener = tokio::net::TcpListener::bind(args.bind).await?;
        let addr = listener.local_addr()?;
        eprintln!("assay review server on http://{addr}/ (Ctrl-C stops it)");
        tracing::info!(%addr, "serving");
        assay_server::serve(listener, state).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
