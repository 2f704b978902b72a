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
            .map_err(|e| {
                // The driver's message may hold the URL too: the error is kept as redacted text.
                anyhow::anyhow!(redact_secrets(&e.to_string(), &self.store))
                    .context(format!("opening the store {}", self.store_display()))
            })
    }

    /// The store as messages and logs show it: its password replaced by `***`.
    pub fn store_display(&self) -> String {
        redact_url(&self.store)
    }
}

/// `url` with the password of its user info replaced by `***` (`postgres://u:***@host/db`); anything without
/// a password (a file path, `sqlite://...`, `postgres://host/db`) as it is.
pub fn redact_url(url: &str) -> String {
    match password_span(url) {
        Some((start, end)) => format!("{}***{}", &url[..start], &url[end..]),
        None => url.to_string(),
    }
}

/// `text` with every occurrence of `url` redacted ([`redact_url`]) and its password, raw or percent-decoded,
/// replaced by `***` wherever else it appears (a driver's message may quote it apart from the URL).
pub fn redact_secrets(text: &str, url: &str) -> String {
    let Some((start, end)) = password_span(url) else {
        return text.to_string();
    };
    let password = &url[start..end];
    let mut text = text.replace(url, &redact_url(url));
    for secret in [password.to_string(), percent_decode(password)] {
        if !secret.is_empty() && secret != "***" {
            text = text.replace(&secret, "***");
        }
    }
    text
}

/// Byte range of the password in `scheme://user:password@host...`, if there is one.
fn password_span(url: &str) -> Option<(usize, usize)> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    (colon + 1 < at).then_some((authority_start + colon + 1, authority_start + at))
}

/// `%XX` escapes decoded (a URL's password is usually written percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A current-thread runtime for the store's async calls; the model runs on the calling thread.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11 (1.7): a store URL's password never reaches a message.
    #[test]
    fn issue_11_store_password_is_redacted() {
        let url = "postgres://assay:s3cr%40t@db.example:5432/labels?sslmode=require";
        assert_eq!(
            redact_url(url),
            "postgres://assay:***@db.example:5432/labels?sslmode=require"
        );
        for plain in [
            "/home/me/.cache/assay/assay.db",
            "sqlite://store.db",
            "postgres://db.example/labels",
            "postgres://assay@db.example/labels",
        ] {
            assert_eq!(redact_url(plain), plain);
        }
        let driver =
            format!("error connecting to {url}: password authentication failed for s3cr@t");
        let shown = redact_secrets(&driver, url);
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains("postgres://assay:***@db.example"), "{shown}");
    }
}
