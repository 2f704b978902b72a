//! Flags, environment and defaults resolved into one struct before any work starts.

use std::io::IsTerminal;
use std::path::PathBuf;

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$ASSAY_HOME` (model cache, default store).
    pub home: PathBuf,
    /// Store URL or path.
    pub store: String,
    /// Draw progress bars.
    pub progress: bool,
}

impl Settings {
    /// `--store` (or `ASSAY_STORE`, which clap folds into the flag) wins over `$ASSAY_HOME/assay.db`; progress bars
    /// only on a terminal and without `--quiet`.
    pub fn resolve(store: Option<&str>, quiet: bool) -> Self {
        let home = assay_llm::cache::assay_home();
        let store = store
            .map(str::to_string)
            .unwrap_or_else(|| home.join("assay.db").display().to_string());
        Self {
            home,
            store,
            progress: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// Open the store, creating the folder of a SQLite file if needed.
    pub fn open_store(
        &self,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<assay_store::Store> {
        let path = self.store.strip_prefix("sqlite://").unwrap_or(&self.store);
        if !path.contains("://") && !path.starts_with("sqlite:") {
            if let Some(parent) = std::path::Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)?;
            }
        }
        runtime
            .block_on(assay_store::Store::open(&self.store))
            .map_err(|e| anyhow::anyhow!(e).context(format!("opening the store {}", self.store)))
    }
}

/// A current-thread runtime for the store's async calls; the model runs on the calling thread.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
