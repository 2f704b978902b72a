//! `assay annotator`: the people who answer in `assay serve`.

use std::process::ExitCode;

use assay_store::Role;
use clap::{Args, Subcommand};
use comfy_table::Table;

use crate::settings::{runtime, Settings};

/// Subcommands of `assay annotator`.
#[derive(Debug, Subcommand)]
pub enum AnnotatorCommand {
    /// Add a person; prints their token (shown only now: it is stored hashed).
    Add(AddArgs),
    /// List the people.
    List,
}

/// Arguments of `assay annotator add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Unique name (letters, digits, `.`, `_`, `-`, `@`); their answers are filed under it.
    name: String,
    /// May add people and create projects.
    #[arg(long)]
    admin: bool,
    /// A skill (repeatable): items that need it go only to people who have it.
    #[arg(long = "skill", value_name = "SKILL")]
    skills: Vec<String>,
}

/// Run `assay annotator`.
pub fn run(settings: &Settings, command: AnnotatorCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    match command {
        AnnotatorCommand::Add(args) => {
            let role = if args.admin {
                Role::Admin
            } else {
                Role::Annotator
            };
            assay_server::check_annotator(&args.name, &args.skills).map_err(anyhow::Error::msg)?;
            let token = assay_server::auth::new_secret();
            let added = rt.block_on(store.create_annotator(
                &args.name,
                role,
                &args.skills,
                &assay_server::auth::sha256_hex(&token),
            ))?;
            if added.is_none() {
                anyhow::bail!("an annotator named `{}` exists", args.name);
            }
            eprintln!(
                "added {role} {}; their token (shown only now) is:",
                args.name
            );
            outln!("{token}");
        }
        AnnotatorCommand::List => {
            let mut table = Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(["id", "name", "role", "skills", "added"]);
            for a in rt.block_on(store.annotators())? {
                table.add_row([
                    a.id.to_string(),
                    a.name,
                    a.role.to_string(),
                    a.skills.join(", "),
                    a.created_at.get(..19).unwrap_or("").replace('T', " "),
                ]);
            }
            outln!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
