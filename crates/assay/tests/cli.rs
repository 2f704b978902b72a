//! CLI output snapshots (insta) for commands whose output does not depend on a model run.

mod common;

use common::*;

#[test]
fn model_list_shows_the_catalog() {
    let home = tempfile::tempdir().unwrap();
    let stdout = ok(bare_assay(home.path()).args(["model", "list"]));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&home.path().display().to_string()), "[HOME]");
    settings.bind(|| insta::assert_snapshot!(stdout));
}

#[test]
fn runs_on_an_empty_store_is_an_empty_table() {
    let home = tempfile::tempdir().unwrap();
    let stdout = ok(bare_assay(home.path())
        .args(["runs"])
        .arg("--store")
        .arg(home.path().join("s.db")));
    insta::assert_snapshot!(stdout);
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '/' || c == '-' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
