//! A real headless Chromium driven over WebDriver: chromedriver's HTTP JSON protocol
//! (W3C WebDriver), spoken with our hyper client. Chromium and chromedriver come
//! from the distribution's packages (`apt-get install chromium chromium-driver`);
//! nothing is downloaded.
//!
//! Without them the tests skip, unless `MESHLAB_REQUIRE_DOCKER` is set (CI): then
//! they fail, saying what to install.

// Each test binary uses its own share of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::engine::{block_on, free_port};

/// The browser binaries Debian installs.
const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

/// How long a wait for the page lasts.
pub const PAGE_PATIENCE: Duration = Duration::from_secs(30);

/// `(chromium, chromedriver)`, or `None` (with a note) when missing and not required.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |candidates: &[&str]| candidates.iter().map(PathBuf::from).find(|p| p.exists());
    match (find(CHROMIUM), find(CHROMEDRIVER)) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ if std::env::var_os("MESHLAB_REQUIRE_DOCKER").is_some() => panic!(
            "MESHLAB_REQUIRE_DOCKER is set, but Chromium or chromedriver is missing \
             (install them with `apt-get install -y chromium chromium-driver`)"
        ),
        _ => {
            eprintln!("skipped: no Chromium (apt-get install chromium chromium-driver)");
            None
        }
    }
}

/// One HTTP request with our hyper client: (status, body).
pub fn http(
    method: &str,
    url: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let method = method.to_owned();
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    block_on(async move {
        let uri: http::Uri = url.parse().expect("a URL");
        let authority = uri.authority().expect("a host").clone();
        let stream = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {authority}: {err}"));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(method.as_str())
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let body = match body {
            Some(body) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(&body).unwrap())
            }
            None => Bytes::new(),
        };
        let response = sender
            .send_request(request.body(Full::new(body)).unwrap())
            .await
            .unwrap_or_else(|err| panic!("{method} {url}: {err}"));
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    })
}

/// A chromedriver process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    screenshots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a 1440×900 window.
    pub fn start(chromium: &Path, chromedriver: &Path, screenshots: PathBuf) -> Self {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && serde_json::from_slice::<Value>(
                    &http("GET", &format!("{base}/status"), None, &[]).1,
                )
                .is_ok_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            super::cli::pause(Duration::from_millis(100));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1440,900",
                         "--force-device-scale-factor=1"]
            }
        }}});
        let (status, body) = http("POST", &format!("{base}/session"), Some(capabilities), &[]);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "no browser session: {value}");
        let session = value["value"]["sessionId"].as_str().unwrap().to_owned();
        std::fs::create_dir_all(&screenshots).unwrap();
        Browser {
            driver,
            base,
            session,
            screenshots,
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_command(method, path, body) {
            Ok(value) => value,
            Err(error) => panic!("WebDriver {method} {path}: {error}"),
        }
    }

    /// A command's value, or WebDriver's error object.
    fn try_command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let (status, bytes) = http(method, &url, body, &[]);
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == 200 {
            Ok(value["value"].clone())
        } else {
            Err(value["value"].clone())
        }
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; returns what it returns.
    pub fn run(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The element matching a CSS selector (WebDriver's element reference).
    pub fn find(&self, css: &str) -> String {
        let value = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        value
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {value}"))
            .to_owned()
    }

    /// Clicks the element matching `css`, as a user's click.
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Clears the field matching `css` and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.command(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Waits until `script` returns something other than `null`/`false`; returns it.
    pub fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_for_within(what, script, PAGE_PATIENCE)
    }

    /// [`Browser::wait_for`] with its own patience.
    pub fn wait_for_within(&self, what: &str, script: &str, patience: Duration) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let value = self.run(script);
            if !(value.is_null() || value == false) {
                return value;
            }
            if Instant::now() > deadline {
                let shot = self.screenshot(&format!("timeout-{}", what.replace(' ', "-")));
                panic!(
                    "{what}: not seen within {patience:?} (screenshot {})",
                    shot.display()
                );
            }
            super::cli::pause(Duration::from_millis(250));
        }
    }

    /// Saves a PNG of the window as `<name>.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.command("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = std::panic::catch_unwind(|| http("DELETE", &url, None, &[]));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
