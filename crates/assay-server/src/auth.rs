//! Who is calling: a bearer token or a session cookie, checked on every `/api/` request but health and login.
//!
//! Tokens and session ids are random 256-bit values; the store keeps only their SHA-256. A cookie-authenticated
//! request that changes state must echo the session's CSRF token in `X-CSRF-Token`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use sha2::Digest;

use crate::error::ApiError;
use crate::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "assay_session";

/// The authenticated caller, put in the request's extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub annotator: assay_store::Annotator,
    /// The session's CSRF token when the caller came with a cookie.
    pub csrf_token: Option<String>,
    /// Hash of the session id when the caller came with a cookie.
    pub session_sha256: Option<String>,
}

impl Caller {
    /// Whether the caller may manage annotators and projects.
    pub fn is_admin(&self) -> bool {
        self.annotator.role == assay_store::Role::Admin
    }

    /// 403 unless admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs the admin role"))
        }
    }
}

/// A new random secret: 32 bytes from the thread's CSPRNG, as hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Hex SHA-256 of a secret: what the store keeps.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Equality that takes the same time wherever the strings differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(()),
    )
}

async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    if let Some(token) = bearer(headers) {
        let Ok(token) = token else { return Ok(None) };
        let key = format!("t:{}", sha256_hex(token));
        if let Some(caller) = state.cached_caller(&key) {
            return Ok(Some(caller));
        }
        let annotator = state.store().annotator_by_token(&key[2..]).await?;
        let caller = annotator.map(|annotator| Caller {
            annotator,
            csrf_token: None,
            session_sha256: None,
        });
        if let Some(c) = &caller {
            state.remember_caller(key, c);
        }
        return Ok(caller);
    }
    if let Some(session) = cookie(headers, SESSION_COOKIE) {
        let hash = sha256_hex(session);
        let key = format!("s:{hash}");
        if let Some(caller) = state.cached_caller(&key) {
            return Ok(Some(caller));
        }
        let found = state.store().session(&hash).await?;
        let caller = found.map(|(annotator, csrf)| Caller {
            annotator,
            csrf_token: Some(csrf),
            session_sha256: Some(hash),
        });
        if let Some(c) = &caller {
            state.remember_caller(key, c);
        }
        return Ok(caller);
    }
    Ok(None)
}

/// Middleware: authenticate every `/api/` request except `GET /api/health` and `POST /api/login` (unknown paths
/// included, so they answer 401 before 404), check CSRF on cookie-authenticated state changes, and add the
/// security headers to every response.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let open = {
        let path = request.uri().path();
        !(path == "/api" || path.starts_with("/api/"))
            || path == "/api/health"
            || path == "/api/login"
    };
    let mut response = if open {
        next.run(request).await
    } else {
        match resolve(&state, request.headers()).await {
            Err(e) => e.into_response(),
            Ok(None) => ApiError::unauthorized().into_response(),
            Ok(Some(caller)) => {
                let safe = matches!(
                    *request.method(),
                    Method::GET | Method::HEAD | Method::OPTIONS
                );
                let csrf_ok = match &caller.csrf_token {
                    None => true,
                    Some(expected) => {
                        safe || request
                            .headers()
                            .get("x-csrf-token")
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|got| constant_time_eq(got, expected))
                    }
                };
                if csrf_ok {
                    request.extensions_mut().insert(caller);
                    next.run(request).await
                } else {
                    ApiError::forbidden("missing or wrong X-CSRF-Token header").into_response()
                }
            }
        }
    };
    let is_json = path_is_api(&response);
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ] {
        headers.insert(name, value.parse().expect("static header value"));
    }
    if is_json {
        headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    }
    response
}

fn path_is_api(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_parse_among_others_and_secrets_differ() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; assay_session=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &b));
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
