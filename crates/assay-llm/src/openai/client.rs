//! Driving an OpenAI-compatible server: a bounded number of requests in flight, request and token pacing, a
//! per-request timeout, and retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped
//! connections (a `Retry-After` header wins when it asks for longer). Answers are read up to
//! [`MAX_RESPONSE_BYTES`]; a longer one fails its request rather than filling memory.
//!
//! Why the pacing and backoff are written here rather than taken from `governor` and `backon` (issue 11 §1.12,
//! reviewed): the whole of it is [`Pacer`] (one start interval and one token bucket, ~50 lines, unit-tested) and
//! [`backoff`] (3 lines). `governor` would need two limiters and still a branch of our own for a request larger
//! than a minute's token allowance (its `until_n_ready` refuses those outright, where this waits for a full
//! bucket and sends), and brings its own clock and a dozen dependencies. `backon` covers the delays but not what
//! the loop here is mostly about: a `Retry-After` that wins when longer, a 4xx that rejects the item instead of
//! retrying, giving the concurrency slot back while waiting, and stopping at once on Ctrl-C. A crate would move
//! that logic into closures without removing it. No answer cache lives in memory here (answers go to the store),
//! so there is nothing for `moka` to bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;
use tokio::sync::Semaphore;

/// The largest answer body read from a server, 64 MiB (a scoring answer is a few KiB); a larger one is refused
/// as soon as its `Content-Length` or its bytes pass the limit ([`Client::with_max_response_bytes`]).
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// How much of an error answer (4xx, 5xx) is read: its message shows at most 500 characters of it.
const ERROR_BODY_BYTES: u64 = 64 << 10;

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
    max_response_bytes: u64,
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
            max_response_bytes: MAX_RESPONSE_BYTES,
            counters: Arc::new(ClientCounters::default()),
        })
    }

    /// The same client with another limit on the size of an answer (default [`MAX_RESPONSE_BYTES`]).
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
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
                Ok(mut response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    if status.is_success() {
                        match read_body(&mut response, self.max_response_bytes).await {
                            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                                Ok(v) => {
                                    self.counters.answers.fetch_add(1, Ordering::Relaxed);
                                    return Ok(v);
                                }
                                Err(e) => Attempt::Retry(format!("unparsable answer: {e}"), None),
                            },
                            // Asking again would bring the same answer: this request fails.
                            Err(Body::TooLarge) => Attempt::Reject(format!(
                                "HTTP {status}: the answer is larger than {} bytes, the most assay reads \
                                 (is {url} an OpenAI-compatible endpoint?)",
                                self.max_response_bytes
                            )),
                            Err(Body::Failed(e)) => {
                                Attempt::Retry(format!("reading the answer: {e}"), retry_after)
                            }
                        }
                    } else {
                        // An error answer is only quoted: its start is enough.
                        let text = match read_start(&mut response, ERROR_BODY_BYTES).await {
                            Ok(bytes) => {
                                String::from_utf8_lossy(&bytes).chars().take(500).collect()
                            }
                            Err(e) => format!("(reading the answer failed: {e})"),
                        };
                        let message = format!("HTTP {status}: {text}");
                        if is_transient(status.as_u16()) {
                            Attempt::Retry(message, retry_after)
                        } else {
                            Attempt::Reject(message)
                        }
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

/// Why [`read_body`] gave no body.
enum Body {
    /// Longer than the limit (by its `Content-Length`, or once that many bytes came).
    TooLarge,
    /// The connection failed or timed out.
    Failed(reqwest::Error),
}

/// The response's body, read piece by piece and refused as soon as it would pass `limit` bytes, so that a
/// wrong or hostile server cannot make the client allocate what it sends.
async fn read_body(response: &mut reqwest::Response, limit: u64) -> Result<Vec<u8>, Body> {
    let announced = response.content_length();
    if announced.is_some_and(|length| length > limit) {
        return Err(Body::TooLarge);
    }
    let mut body = Vec::with_capacity(usize::try_from(announced.unwrap_or(0)).unwrap_or(0));
    while let Some(piece) = response.chunk().await.map_err(Body::Failed)? {
        if (body.len() + piece.len()) as u64 > limit {
            return Err(Body::TooLarge);
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

/// The first `limit` bytes of the response's body (or all of it, if shorter); the rest is not read.
async fn read_start(response: &mut reqwest::Response, limit: u64) -> reqwest::Result<Vec<u8>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = Vec::new();
    while body.len() < limit {
        let Some(piece) = response.chunk().await? else {
            break;
        };
        body.extend_from_slice(&piece[..piece.len().min(limit - body.len())]);
    }
    Ok(body)
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

    /// A server on loopback that answers one request with `head` and then whatever `body` writes (until it is
    /// done or the client goes away). Returns the base URL.
    fn serve_once(
        head: &'static str,
        body: impl FnOnce(&mut std::net::TcpStream) -> std::io::Result<()> + Send + 'static,
    ) -> String {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || -> std::io::Result<()> {
            let (mut stream, _) = listener.accept()?;
            stream.set_write_timeout(Some(Duration::from_secs(20)))?;
            // Read the request (head and body) so the client is not reset before it has sent it all.
            let mut reader = std::io::BufReader::new(stream.try_clone()?);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line)?;
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            reader.read_exact(&mut vec![0; length])?;
            stream.write_all(head.as_bytes())?;
            body(&mut stream)
        });
        format!("http://{address}/v1")
    }

    fn one_try() -> Limits {
        Limits {
            max_retries: 0,
            timeout: Duration::from_secs(30),
            ..Limits::default()
        }
    }

    /// Writes `total` bytes of JSON-ish filler in 64 KiB pieces, as a chunked body when `chunked`.
    fn filler(
        stream: &mut std::net::TcpStream,
        total: usize,
        chunked: bool,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let piece = vec![b' '; 64 << 10];
        for _ in 0..total / piece.len() {
            if chunked {
                write!(stream, "{:x}\r\n", piece.len())?;
            }
            stream.write_all(&piece)?;
            if chunked {
                stream.write_all(b"\r\n")?;
            }
        }
        if chunked {
            stream.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn an_answer_announced_larger_than_the_limit_fails_the_request_unread() {
        // Announces 100 GiB; nothing near that is ever sent or allocated.
        let base = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 107374182400\r\n\r\n",
            |stream| filler(stream, 8 << 20, false),
        );
        let client = Client::new(&base, None, one_try()).unwrap();
        let error = client
            .post("completions", &serde_json::json!({}), 1, &[])
            .await
            .unwrap_err();
        let CallError::Rejected(message) = error else {
            panic!("{error:?}")
        };
        assert!(
            message.contains("the answer is larger than 67108864 bytes, the most assay reads"),
            "{message}"
        );
        assert_eq!(client.counters.retries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_streamed_answer_past_the_limit_fails_the_request_when_it_passes() {
        // No Content-Length: 8 MiB in chunks against a 1 MiB limit.
        let base = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            |stream| filler(stream, 8 << 20, true),
        );
        let client = Client::new(&base, None, one_try())
            .unwrap()
            .with_max_response_bytes(1 << 20);
        let error = client
            .post("completions", &serde_json::json!({}), 1, &[])
            .await
            .unwrap_err();
        let CallError::Rejected(message) = error else {
            panic!("{error:?}")
        };
        assert!(message.contains("larger than 1048576 bytes"), "{message}");
    }

    #[tokio::test]
    async fn answers_within_the_limit_are_read_and_long_error_answers_are_quoted_in_part() {
        let base = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            |stream| {
                use std::io::Write;
                stream.write_all(b"1\r\n{\r\n")?;
                filler(stream, 1 << 20, true)?;
                Ok(())
            },
        );
        // `{` and 1 MiB of spaces is not JSON, so this is the parse error, after the whole body was read.
        let client = Client::new(&base, None, one_try())
            .unwrap()
            .with_max_response_bytes(2 << 20);
        let error = client
            .post("completions", &serde_json::json!({}), 1, &[])
            .await
            .unwrap_err();
        assert!(
            matches!(&error, CallError::Exhausted(m) if m.contains("unparsable answer: EOF")),
            "{error:?}"
        );

        let base = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n",
            |stream| std::io::Write::write_all(stream, b"{\"ok\":true}"),
        );
        let client = Client::new(&base, None, one_try()).unwrap();
        let answer = client
            .post("completions", &serde_json::json!({}), 1, &[])
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({"ok": true}));

        // A 400 with a 100 GiB body: rejected by its status, quoting the start of it.
        let base = serve_once(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 107374182400\r\n\r\n",
            |stream| {
                std::io::Write::write_all(stream, b"model not found")?;
                filler(stream, 16 << 20, false)
            },
        );
        let client = Client::new(&base, None, one_try()).unwrap();
        let error = client
            .post("completions", &serde_json::json!({}), 1, &[])
            .await
            .unwrap_err();
        let CallError::Rejected(message) = error else {
            panic!("{error:?}")
        };
        assert!(
            message.starts_with("HTTP 400 Bad Request: model not found   "),
            "{message}"
        );
        assert_eq!(
            message.chars().count(),
            "HTTP 400 Bad Request: ".len() + 500
        );
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
