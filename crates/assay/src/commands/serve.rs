//! `assay serve`: the review server (API + UI) over the store.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;

/// Arguments of `assay serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; put a TLS proxy in front before exposing it.
    #[arg(long, default_value = "127.0.0.1:7878", env = "ASSAY_BIND")]
    bind: SocketAddr,
}

/// Run the server until Ctrl-C.
pub fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = settings.open_store(&rt)?;
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
