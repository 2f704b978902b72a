//! Who is calling: a bearer token or a session cookie, checked on every `/api/` request but health and login.
//!
//! Tokens and session ids are random 256-bit values; the store keeps only their SHA-256. A cookie-authenticated
//! request that changes state must echo the session's CSRF token in `X-CSRF-Token`.
//!
//! Credentials the store does not know are remembered for a while (a negative cache: asking again costs no
//! query), and each client gets a limited number of failed attempts (unknown tokens and sessions, failed logins)
//! per minute before it is answered 429 ([`FailureLimiter`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use rand::RngCore;
use sha2::Digest;
use subtle::ConstantTimeEq;

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

/// Equality that takes the same time wherever the strings differ (`subtle`; the length is not secret).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The value of a cookie in the request's `Cookie` headers (parsed by axum-extra's cookie jar).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value of a session cookie (`None`: the one that clears it). `secure` adds `Secure`.
pub fn session_cookie(session: Option<&str>, ttl: Duration, secure: bool) -> String {
    let max_age = match session {
        Some(_) => time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        None => time::Duration::ZERO,
    };
    Cookie::build((SESSION_COOKIE, session.unwrap_or("").to_string()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(secure)
        .max_age(max_age)
        .build()
        .to_string()
}

/// Whether the request came over HTTPS as far as the server can tell: always when configured so
/// (`secure_cookies`), else when the proxy is trusted and says `X-Forwarded-Proto: https`.
pub fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    let config = state.config();
    config.secure_cookies
        || (config.trust_proxy
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// Who is asking, for the failure limit: the peer's address, or with a trusted proxy the address it appended
/// last to `X-Forwarded-For`. `None` when unknown (a request without a socket, as in tests).
pub fn client_ip(
    state: &AppState,
    request_headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<IpAddr> {
    if state.config().trust_proxy {
        let forwarded = request_headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

/// Failed authentication attempts per client in a fixed one-minute window, and credentials known to be unknown.
/// Hand-written (a few lines over a map) rather than a rate-limiting crate: what is limited is failures only,
/// which a generic request limiter does not see.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    per_minute: u32,
    failures: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
    unknown: Mutex<HashMap<String, Instant>>,
}

const WINDOW: Duration = Duration::from_secs(60);
/// Most clients and unknown credentials remembered; the maps are pruned when full.
const REMEMBERED: usize = 100_000;

impl FailureLimiter {
    /// A limiter allowing this many failures per client and minute (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            ..Self::default()
        }
    }

    /// `Some(seconds to wait)` when the client has used up its failures.
    pub fn blocked(&self, client: Option<IpAddr>) -> Option<u64> {
        if self.per_minute == 0 {
            return None;
        }
        let failures = self.failures.lock().expect("failure limiter lock");
        let (since, count) = failures.get(&client)?;
        let elapsed = since.elapsed();
        (elapsed < WINDOW && *count >= self.per_minute).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    /// Count a failed attempt of the client; `credential` (a hash), when given, is remembered as unknown.
    pub fn failed(&self, client: Option<IpAddr>, credential: Option<&str>) {
        {
            let mut failures = self.failures.lock().expect("failure limiter lock");
            if failures.len() >= REMEMBERED {
                failures.retain(|_, (since, _)| since.elapsed() < WINDOW);
            }
            let entry = failures.entry(client).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
        if let Some(key) = credential {
            let mut unknown = self.unknown.lock().expect("unknown credential lock");
            if unknown.len() >= REMEMBERED {
                unknown.retain(|_, at| at.elapsed() < WINDOW);
                if unknown.len() >= REMEMBERED {
                    unknown.clear();
                }
            }
            unknown.insert(key.to_string(), Instant::now());
        }
    }

    /// Whether this credential (hash) was unknown to the store within the last minute.
    pub fn known_unknown(&self, credential: &str) -> bool {
        self.unknown
            .lock()
            .expect("unknown credential lock")
            .get(credential)
            .is_some_and(|at| at.elapsed() < WINDOW)
    }

    /// Forget that a credential was unknown (a token just created may have been tried before).
    pub fn forget(&self, credential: &str) {
        self.unknown
            .lock()
            .expect("unknown credential lock")
            .remove(credential);
    }
}

/// 429 with `Retry-After`.
pub fn too_many_failures(retry_after: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed attempts: wait a minute",
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        retry_after.to_string().parse().expect("digits"),
    );
    response
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

/// What the credentials of a request name.
enum Resolved {
    /// Someone.
    Caller(Caller),
    /// No credentials at all.
    Nobody,
    /// Credentials nobody has (or a malformed `Authorization` header).
    Unknown,
    /// The client used up its failed attempts.
    Limited(u64),
}

async fn resolve(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Resolved, ApiError> {
    let limiter = state.limiter();
    let (key, hash) = if let Some(token) = bearer(headers) {
        let Ok(token) = token else {
            limiter.failed(client, None);
            return Ok(Resolved::Unknown);
        };
        let hash = sha256_hex(token);
        (format!("t:{hash}"), hash)
    } else if let Some(session) = cookie(headers, SESSION_COOKIE) {
        let hash = sha256_hex(&session);
        (format!("s:{hash}"), hash)
    } else {
        return Ok(Resolved::Nobody);
    };
    if let Some(caller) = state.cached_caller(&key) {
        return Ok(Resolved::Caller(caller));
    }
    if let Some(wait) = limiter.blocked(client) {
        return Ok(Resolved::Limited(wait));
    }
    if limiter.known_unknown(&key) {
        limiter.failed(client, None);
        return Ok(Resolved::Unknown);
    }
    let caller = if key.starts_with("t:") {
        state
            .store()
            .annotator_by_token(&hash)
            .await?
            .map(|annotator| Caller {
                annotator,
                csrf_token: None,
                session_sha256: None,
            })
    } else {
        state
            .store()
            .session(&hash)
            .await?
            .map(|(annotator, csrf)| Caller {
                annotator,
                csrf_token: Some(csrf),
                session_sha256: Some(hash),
            })
    };
    match caller {
        Some(c) => {
            state.remember_caller(key, &c);
            Ok(Resolved::Caller(c))
        }
        None => {
            limiter.failed(client, Some(&key));
            Ok(Resolved::Unknown)
        }
    }
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
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let client = client_ip(&state, request.headers(), peer);
        match resolve(&state, request.headers(), client).await {
            Err(e) => e.into_response(),
            Ok(Resolved::Nobody | Resolved::Unknown) => ApiError::unauthorized().into_response(),
            Ok(Resolved::Limited(wait)) => too_many_failures(wait),
            Ok(Resolved::Caller(caller)) => {
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
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && response.headers().get(header::CONTENT_TYPE).is_none()
    {
        // The request timeout answers with a bare status; errors are JSON.
        response = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request took too long (or its body came too slowly)",
        )
        .into_response();
    }
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
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &b));
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
