//! Task files the admin API may read: only under the configured projects directory
//! ([`crate::ServerConfig::projects_dir`]), with every file the task names (its `dataset`, `examples-from`)
//! under it too. Errors name the file relative to that directory and the problem, never a file's contents (a
//! TOML parser's message quotes the offending line; that part is cut).

use std::path::{Component, Path, PathBuf};

use assay_core::TaskSpec;

use crate::error::{ApiError, ApiResult};

/// The task of a `POST /api/projects`: from a file under `projects_dir` (`task_path`, relative to it or absolute),
/// or from text (`task_toml`). Returns the task and whether its dataset may be imported (only a task file's).
pub fn task_of_request(
    projects_dir: Option<&Path>,
    task_path: Option<&str>,
    task_toml: Option<&str>,
) -> ApiResult<(TaskSpec, bool)> {
    match (task_path, task_toml) {
        (Some(path), None) => {
            let Some(dir) = projects_dir else {
                return Err(ApiError::forbidden(
                    "this server reads no task files (start it with `assay serve --projects-dir DIR`); send the task as `task_toml`",
                ));
            };
            let dir = canonical_dir(dir)?;
            let file = within(&dir, Path::new(path))?;
            let spec = TaskSpec::from_path(&file).map_err(|e| task_error(&e, &dir))?;
            check_named_files(&spec, Some(&dir))?;
            Ok((spec, true))
        }
        (None, Some(text)) => {
            let mut spec =
                TaskSpec::from_toml_str(text).map_err(|e| task_error(&e, Path::new("")))?;
            // The files an uploaded task names are read now only for its few-shot examples; they must lie under
            // the projects directory, and relative paths are relative to it.
            if let Some(examples) = spec.examples_from.as_mut() {
                let Some(dir) = projects_dir else {
                    return Err(ApiError::forbidden(
                        "`examples-from` names a file, and this server reads none (start it with `--projects-dir DIR`)",
                    ));
                };
                let dir = canonical_dir(dir)?;
                examples.path = within(&dir, &examples.path)?;
            }
            Ok((spec, false))
        }
        _ => Err(ApiError::bad_request(
            "give exactly one of `task_path` and `task_toml`",
        )),
    }
}

fn canonical_dir(dir: &Path) -> ApiResult<PathBuf> {
    dir.canonicalize()
        .map_err(|e| ApiError::internal(format!("projects directory {}: {e}", dir.display())))
}

/// `path` (relative to `dir`, or absolute) as an existing file under `dir`, symbolic links resolved. Whether a
/// file outside exists is not told.
pub fn within(dir: &Path, path: &Path) -> ApiResult<PathBuf> {
    let outside = || {
        ApiError::forbidden(format!(
            "`{}` is outside the server's projects directory",
            path.display()
        ))
    };
    let joined = lexical(&dir.join(path));
    let real = match joined.canonicalize() {
        Ok(real) if real.starts_with(dir) => real,
        Err(_) if joined.starts_with(dir) => {
            return Err(ApiError::invalid(format!(
                "no file `{}` in the server's projects directory",
                shown(dir, &joined).display()
            )))
        }
        _ => return Err(outside()),
    };
    if !real.is_file() {
        return Err(ApiError::invalid(format!(
            "`{}` is not a file",
            shown(dir, &joined).display()
        )));
    }
    Ok(real)
}

/// `.` and `..` removed without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn shown<'a>(dir: &Path, path: &'a Path) -> &'a Path {
    path.strip_prefix(dir).unwrap_or(path)
}

/// The files a task file names must be under the directory too.
fn check_named_files(spec: &TaskSpec, dir: Option<&Path>) -> ApiResult<()> {
    let Some(dir) = dir else { return Ok(()) };
    if let Some(dataset) = &spec.dataset {
        within(dir, dataset).map_err(|e| named("dataset", e))?;
    }
    if let Some(examples) = &spec.examples_from {
        within(dir, &examples.path).map_err(|e| named("examples-from", e))?;
    }
    Ok(())
}

fn named(key: &str, e: ApiError) -> ApiError {
    ApiError::new(e.status, format!("the task's `{key}`: {}", e.message))
}

/// A task error for a client: the parser's message without the quoted source lines, paths relative to `dir`.
pub fn task_error(e: &assay_core::Error, dir: &Path) -> ApiError {
    let text = match e {
        assay_core::Error::TaskSyntax { path, message }
        | assay_core::Error::TaskInvalid { path, message } => {
            format!(
                "task file {}: {}",
                shown(dir, path).display(),
                without_source(message)
            )
        }
        assay_core::Error::Read { path, source } => {
            format!(
                "cannot read {}: {}",
                shown(dir, path).display(),
                source.kind()
            )
        }
        other => without_source(&other.to_string()),
    };
    ApiError::invalid(text)
}

/// A message without the lines that quote the input (`12 | name = …`, ` | ^^^`), as TOML and minijinja errors
/// print them. The key of a quoted `key = value` line is kept (a task's keys are its schema), never the value.
pub fn without_source(message: &str) -> String {
    fn quoted(line: &str) -> Option<&str> {
        line.trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
            .strip_prefix('|')
    }
    let mut kept = Vec::new();
    let mut key = None;
    for line in message.lines() {
        match quoted(line) {
            Some(source) => {
                let candidate = source.split_once('=').map(|(k, _)| k.trim());
                if let Some(k) = candidate.filter(|k| {
                    !k.is_empty()
                        && k.len() <= 64
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                }) {
                    key.get_or_insert_with(|| k.to_string());
                }
            }
            None if line.trim().is_empty() => {}
            None => kept.push(line.trim().to_string()),
        }
    }
    let mut out = kept.join("; ");
    if let Some(key) = key {
        out.push_str(&format!(" (key `{key}`)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_snippets_are_cut_and_dot_dot_stays_inside() {
        let e = TaskSpec::from_toml_str("name = \"x\"\nsecret-value-here = 1\n").unwrap_err();
        let message = task_error(&e, Path::new("")).message;
        assert!(!message.contains("secret-value-here = 1"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        assert_eq!(
            within(&dir, Path::new("../../etc/passwd"))
                .unwrap_err()
                .status,
            axum::http::StatusCode::FORBIDDEN
        );
        assert_eq!(
            within(&dir, Path::new("/etc/passwd")).unwrap_err().status,
            axum::http::StatusCode::FORBIDDEN
        );
    }
}
