//! A lab driven through the `meshlab` binary, as a learner drives it.

// Each test binary uses its own share of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use super::engine::MESHLAB;
use super::engine::free_port;

/// A lab with a unique name and free ports, purged when dropped.
pub struct Lab {
    pub name: String,
    pub http_port: u16,
    pub https_port: u16,
    pub dashboard_port: u16,
}

impl Lab {
    /// A lab that is not up yet.
    pub fn new(test: &str) -> Self {
        Lab {
            name: format!("mlt-{test}-{}", std::process::id()),
            http_port: free_port(),
            https_port: free_port(),
            dashboard_port: free_port(),
        }
    }

    /// `meshlab --name LAB ARGS…`, with `stdin` piped in when given.
    pub fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(MESHLAB)
            .arg("--name")
            .arg(&self.name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None)
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "meshlab {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The API token `meshlab up` wrote for this lab (the CLI sends it; so must
    /// anything else that calls the API).
    pub fn token(&self) -> String {
        let file = self.token_file();
        std::fs::read_to_string(&file)
            .unwrap_or_else(|err| panic!("{}: {err}", file.display()))
            .trim()
            .to_owned()
    }

    /// Where `meshlab up` writes the lab's API token: the user's config directory.
    pub fn token_file(&self) -> std::path::PathBuf {
        std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".config")
            })
            .join("meshlab")
            .join(&self.name)
            .join("token")
    }

    /// `meshlab up` on the lab's ports, with `extra` flags.
    pub fn up(&self, extra: &[&str]) -> String {
        let (http, https) = (self.http_port.to_string(), self.https_port.to_string());
        let dashboard = self.dashboard_port.to_string();
        let mut args = vec![
            "up",
            "--http-port",
            &http,
            "--https-port",
            &https,
            "--dashboard-port",
            &dashboard,
        ];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    pub fn apply(&self, manifest: &str) {
        let out = self.run_with(&["apply", "-f", "-"], Some(manifest));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn delete(&self, manifest: &str) {
        let out = self.run_with(&["delete", "-f", "-"], Some(manifest));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `curl -s` from the sleep pod: (exit code, stdout).
    pub fn curl_from_sleep(&self, args: &[&str]) -> (i32, String) {
        let mut all = vec![
            "exec",
            "deploy/sleep",
            "--",
            "curl",
            "-s",
            "--max-time",
            "10",
        ];
        all.extend_from_slice(args);
        let out = self.run(&all);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// `curl -s` on the host through the ingress gateway: (exit code, stdout).
    pub fn gateway(&self, path: &str, extra: &[&str]) -> (i32, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let out = Command::new(MESHLAB)
            .arg("curl")
            .args(["-s", "--max-time", "15"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--purge"]);
    }
}

/// Retries `check` until it holds or 20 s pass (configuration is eventually
/// consistent, as Istio's tests allow for); panics with the last observation.
pub fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match check() {
            Ok(()) => return,
            Err(observed) if Instant::now() > deadline => panic!("{what}: {observed}"),
            Err(_) => pause(Duration::from_millis(250)),
        }
    }
}

/// Sleeps the test's thread.
pub fn pause(duration: Duration) {
    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous test: no async runtime to block"
    )]
    std::thread::sleep(duration);
}
