//! An independent OpenAI-compatible server for tests: llama-cpp-python's (`python3 -m llama_cpp.server`) serving
//! the SmolLM2 GGUF file on a free loopback port. Shared by `crates/assay-llm/tests/http*.rs` and
//! `crates/assay/tests/served*.rs` (included with `#[path]`).
//!
//! Without the server installed, tests skip with a message, except under CI (`CI` set), where they fail:
//! `.ci/run` installs `llama-cpp-python[server]==0.3.36` from a wheel built once into /var/tmp/assay-wheels.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned server version the tests were written against.
pub const SERVER_REQUIREMENT: &str = "llama-cpp-python[server]==0.3.36";

/// Whether `python3 -m llama_cpp.server` can run here. Under CI a missing server is a failure, not a skip.
pub fn server_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import llama_cpp.server.app, uvicorn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let message = format!(
            "llama-cpp-python's server is not installed (python3 -m llama_cpp.server): install {SERVER_REQUIREMENT} \
             (`.ci/run` builds its wheel once into /var/tmp/assay-wheels and installs it)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    ok
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running llama-cpp-python server; killed when dropped.
pub struct LlamaServer {
    child: Option<Child>,
    model: PathBuf,
    /// The port it listens on.
    pub port: u16,
    log: PathBuf,
}

impl LlamaServer {
    /// Start serving `model` as `smollm2` on a free port and wait until it answers.
    pub fn start(model: &Path) -> Self {
        Self::start_on(model, free_port())
    }

    /// Start on `port`.
    pub fn start_on(model: &Path, port: u16) -> Self {
        let log = std::env::temp_dir().join(format!("assay-llama-server-{port}.log"));
        let mut server = Self {
            child: None,
            model: model.to_path_buf(),
            port,
            log,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        // One thread: the machines this runs on are small and shared. `--logits_all` is what lets the server
        // return log-probabilities (echoed prompts included).
        let child = Command::new("python3")
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&self.model)
            .args([
                "--model_alias",
                "smollm2",
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
                "--n_threads_batch",
                "1",
                "--logits_all",
                "true",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting python3 -m llama_cpp.server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "llama-cpp-python server exited ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if http_get(self.port, "/v1/models").is_some_and(|b| b.contains("smollm2")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "llama-cpp-python server did not answer within 120 s:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Base URL up to `/v1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Kill the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A GET on loopback; the body, or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then_some(response)
}
