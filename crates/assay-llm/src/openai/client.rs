//! Driving an OpenAI-compatible server: a bounded number of requests in flight, request and token pacing, a
//! per-request timeout, and retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped
//! connections (a `Retry-After` header wins when it asks for longer).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;
use tokio::sync::Semaphore;

/// How hard a server is driven.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Most requests started per minute; `None`: no limit.
    pub requests_per_minute: Option<u32>,
    /// Most (estimated) tokens per minute; `None`: no limit.
    pub tokens_per_minute: Option<u64>,
    /// Longest one attempt may take.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry up to `max_backoff`.
    pub base_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            concurrency: 8,
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout: Duration::from_secs(60),
            max_retries: 8,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Why a request gave no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The server refused this request for what it is (4xx other than 408/409/429): the item cannot be scored.
    Rejected(String),
    /// Still failing after every retry: the server is down or overloaded; the run stops.
    Exhausted(String),
    /// Stopped before an answer came (Ctrl-C, or another request exhausted its retries).
    Cancelled,
}

/// Counters of what the client did.
#[derive(Debug, Default)]
pub struct ClientCounters {
    /// HTTP attempts sent (retries included).
    pub attempts: AtomicU64,
    /// Answers received (status 200).
    pub answers: AtomicU64,
    /// Retries after a transient failure.
    pub retries: AtomicU64,
}

/// An OpenAI-compatible endpoint with its limits.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    limits: Limits,
    slots: Arc<Semaphore>,
    pacer: Arc<Mutex<Pacer>>,
    /// What the client did so far.
    pub counters: Arc<ClientCounters>,
}

impl Client {
    /// A client for `base` (up to and including `/v1`).
    pub fn new(base: &str, api_key: Option<String>, limits: Limits) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::Endpoint {
                url: base.to_string(),
                message: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            api_key,
            limits,
            slots: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            pacer: Arc::new(Mutex::new(Pacer::new(limits))),
            counters: Arc::new(ClientCounters::default()),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// POST `body` to `path` (`completions`, `chat/completions`) and return the JSON answer, retrying transient
    /// failures. `tokens` is the request's estimated size for the tokens-per-minute limit. Nothing new is sent
    /// once `cancel` is set; an attempt already sent is waited for.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        tokens: u64,
        cancel: &[Arc<AtomicBool>],
    ) -> Result<Value, CallError> {
        let cancelled = || cancel.iter().any(|c| c.load(Ordering::SeqCst));
        let url = format!("{}/{path}", self.base);
        let mut last_error = String::new();
        for attempt in 0..=self.limits.max_retries {
            if cancelled() {
                return Err(CallError::Cancelled);
            }
            let permit = self
                .slots
                .acquire()
                .await
                .map_err(|_| CallError::Cancelled)?;
            loop {
                let wait = self
                    .pacer
                    .lock()
                    .expect("pacer lock")
                    .reserve(Instant::now(), tokens);
                if wait.is_zero() {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
            if cancelled() {
                return Err(CallError::Cancelled);
            }
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            let mut request = self.http.post(&url).json(body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => {
                            match serde_json::from_slice::<Value>(&bytes) {
                                Ok(v) => {
                                    self.counters.answers.fetch_add(1, Ordering::Relaxed);
                                    return Ok(v);
                                }
                                Err(e) => Attempt::Retry(format!("unparsable answer: {e}"), None),
                            }
                        }
                        Ok(bytes) => {
                            let text = String::from_utf8_lossy(&bytes);
                            let text: String = text.chars().take(500).collect();
                            let message = format!("HTTP {status}: {text}");
                            if is_transient(status.as_u16()) {
                                Attempt::Retry(message, retry_after)
                            } else {
                                Attempt::Reject(message)
                            }
                        }
                        Err(e) => Attempt::Retry(format!("reading the answer: {e}"), retry_after),
                    }
                }
                Err(e) => Attempt::Retry(describe(&e), None),
            };
            drop(permit);
            match outcome {
                Attempt::Reject(message) => return Err(CallError::Rejected(message)),
                Attempt::Retry(message, retry_after) => {
                    tracing::debug!(%url, attempt, %message, "request failed; retrying");
                    last_error = message;
                    if attempt == self.limits.max_retries {
                        break;
                    }
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    let delay = backoff(
                        attempt,
                        self.limits.base_backoff,
                        self.limits.max_backoff,
                        rand::rng().random::<f64>(),
                    )
                    .max(
                        retry_after
                            .unwrap_or_default()
                            .min(Duration::from_secs(300)),
                    );
                    let until = Instant::now() + delay;
                    while Instant::now() < until {
                        if cancelled() {
                            return Err(CallError::Cancelled);
                        }
                        tokio::time::sleep(
                            (until - Instant::now()).min(Duration::from_millis(100)),
                        )
                        .await;
                    }
                }
            }
        }
        Err(CallError::Exhausted(format!(
            "{url}: no answer after {} attempts; last: {last_error}",
            self.limits.max_retries + 1
        )))
    }
}

enum Attempt {
    Retry(String, Option<Duration>),
    Reject(String),
}

/// Statuses worth retrying: timeouts, conflicts, rate limits and server errors.
fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}

/// `Retry-After` in seconds (the HTTP-date form is rare from model servers and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Exponential backoff with "equal jitter": half the capped exponential delay, plus a random share of the other
/// half (`unit` in [0, 1)).
pub fn backoff(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20)).min(cap);
    exp / 2 + exp.mul_f64(0.5 * unit.clamp(0.0, 1.0))
}

/// Request and token pacing: requests start at least `60 / rpm` seconds apart, and a token bucket of one
/// minute's allowance refills continuously.
#[derive(Debug)]
struct Pacer {
    interval: Option<Duration>,
    next_start: Option<Instant>,
    tokens_per_second: Option<f64>,
    capacity: f64,
    bucket: f64,
    refilled: Option<Instant>,
}

impl Pacer {
    fn new(limits: Limits) -> Self {
        let tpm = limits.tokens_per_minute.map(|t| t as f64);
        Self {
            interval: limits
                .requests_per_minute
                .filter(|&r| r > 0)
                .map(|r| Duration::from_secs_f64(60.0 / f64::from(r))),
            next_start: None,
            tokens_per_second: tpm.map(|t| t / 60.0),
            capacity: tpm.unwrap_or(0.0),
            bucket: tpm.unwrap_or(0.0),
            refilled: None,
        }
    }

    /// Take a start slot and `tokens` from the bucket, or say how long to wait before asking again.
    fn reserve(&mut self, now: Instant, tokens: u64) -> Duration {
        let mut wait = Duration::ZERO;
        if let Some(next) = self.next_start.filter(|&next| next > now) {
            wait = next - now;
        }
        if let Some(rate) = self.tokens_per_second {
            let last = self.refilled.unwrap_or(now);
            self.bucket = (self.bucket + rate * now.saturating_duration_since(last).as_secs_f64())
                .min(self.capacity);
            self.refilled = Some(now);
            // A request larger than a whole minute's allowance waits for a full bucket, then goes.
            let need = (tokens as f64).min(self.capacity);
            if self.bucket < need {
                wait = wait.max(Duration::from_secs_f64((need - self.bucket) / rate));
            }
        }
        if !wait.is_zero() {
            return wait;
        }
        if let Some(interval) = self.interval {
            self.next_start = Some(now + interval);
        }
        if self.tokens_per_second.is_some() {
            self.bucket -= (tokens as f64).min(self.capacity);
        }
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        assert_eq!(backoff(0, base, cap, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(0, base, cap, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(3, base, cap, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(10, base, cap, 1.0), cap);
        assert_eq!(backoff(40, base, cap, 0.5), Duration::from_millis(22_500));
    }

    #[test]
    fn pacer_spaces_requests_and_spends_tokens() {
        let limits = Limits {
            requests_per_minute: Some(60),
            tokens_per_minute: Some(600),
            ..Limits::default()
        };
        let mut pacer = Pacer::new(limits);
        let t0 = Instant::now();
        assert_eq!(pacer.reserve(t0, 500), Duration::ZERO);
        // One request per second.
        let wait = pacer.reserve(t0, 10);
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // After a second, 100 tokens are left plus 10 refilled: 200 more need ~9 s.
        let t1 = t0 + Duration::from_secs(1);
        let wait = pacer.reserve(t1, 200);
        assert!((wait.as_secs_f64() - 9.0).abs() < 0.01, "{wait:?}");
        let t2 = t1 + wait;
        assert_eq!(pacer.reserve(t2, 200), Duration::ZERO);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(is_transient(s), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!is_transient(s), "{s}");
        }
    }
}
