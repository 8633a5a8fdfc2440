//! What every Docker-backed test needs: the engine or a reasoned skip, a free port,
//! and a lab removed when the test ends, pass or fail.
//!
//! Without a reachable engine the tests print "skipped: no Docker" and pass, unless
//! `MESHLAB_REQUIRE_DOCKER` is set (as `.ci/run` does): then they fail.

// Each test binary uses its own share of these helpers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meshlab_control_runtime::{ContainerInfo, ContainerSpec, Docker, ExecSpec, Image, State};

/// The binary under test.
pub const MESHLAB: &str = env!("CARGO_BIN_EXE_meshlab");

/// How long a container gets to reach the state a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(20);

static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// One image import at a time: tests starting together would each import it.
static IMPORT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The engine, or `None` (with a note) when there is none and none is required.
pub async fn docker() -> Option<Docker> {
    match Docker::connect().await {
        Ok(docker) => Some(docker),
        Err(err) if std::env::var_os("MESHLAB_REQUIRE_DOCKER").is_none() => {
            eprintln!("skipped: no Docker ({err})");
            None
        }
        Err(err) => panic!("MESHLAB_REQUIRE_DOCKER is set, but {err}"),
    }
}

/// [`docker`] for synchronous tests.
pub fn docker_available() -> bool {
    block_on(docker()).is_some()
}

/// Runs a future to completion on a runtime of its own (also from inside another
/// runtime's thread, e.g. in `Drop`).
pub fn block_on<F: Future + Send + 'static>(future: F) -> F::Output
where
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    })
    .join()
    .expect("the future does not panic")
}

/// Whether the lab has any container, network or volume left.
pub fn lab_exists(lab: &str) -> bool {
    let lab = lab.to_owned();
    block_on(async move { Docker::connect().await?.lab_exists(&lab).await }).unwrap()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Owned strings for a command line.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A container's output as text.
pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8 output")
}

/// Removes a lab, with purge, when dropped: at the end of a test, pass or fail.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let lab = self.0.clone();
        match block_on(async move { Docker::connect().await?.remove_lab(&lab, true).await }) {
            Ok(_) => {}
            Err(err) => eprintln!("clean-up of lab {} failed: {err}", self.0),
        }
    }
}

/// A test's own lab: its network exists and the image is ready.
pub struct DockerLab {
    pub docker: Docker,
    pub name: String,
    pub image: Image,
    pub _cleanup: Cleanup,
}

impl DockerLab {
    pub async fn new() -> Option<Self> {
        let docker = docker().await?;
        let name = format!(
            "mltest-{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let cleanup = Cleanup(name.clone());
        // The network before the image: a concurrent purge keeps images while any
        // other lab exists.
        docker
            .ensure_network(&name)
            .await
            .expect("the lab's network");
        let image = {
            let _one_at_a_time = IMPORT.lock().await;
            docker
                .ensure_image(Path::new(MESHLAB))
                .await
                .expect("the image")
        };
        Some(Self {
            docker,
            name,
            image,
            _cleanup: cleanup,
        })
    }

    pub fn spec(&self, name: &str, cmd: &[&str]) -> ContainerSpec {
        let mut spec = ContainerSpec::new(&self.name, name, &self.image.tag);
        spec.cmd = strings(cmd);
        spec
    }

    /// Creates and starts a container; returns its id.
    pub async fn run(&self, spec: &ContainerSpec) -> String {
        let id = self.docker.create_container(spec).await.expect("created");
        self.docker.start(&id).await.expect("started");
        id
    }

    pub async fn wait_exited(&self, id: &str) -> ContainerInfo {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let info = self.docker.inspect(id).await.expect("inspected");
            if info.state == State::Exited {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit: {info:?}",
                info.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The container's (stdout, stderr) so far.
    pub async fn logs(&self, id: &str) -> (String, String) {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        self.docker
            .logs(id, false, None, &mut stdout, &mut stderr)
            .await
            .expect("logs");
        (text(stdout), text(stderr))
    }

    /// Waits until the container's stderr contains `needle` (an app's "listening").
    pub async fn wait_for_log(&self, id: &str, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, stderr) = self.logs(id).await;
            if stderr.contains(needle) {
                return stderr;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the logs: {stderr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `cmd` in the container: (exit status, stdout, stderr).
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> (i64, String, String) {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let status = self
            .docker
            .exec(
                id,
                &ExecSpec::new(cmd.iter().copied()),
                &mut stdout,
                &mut stderr,
            )
            .await
            .expect("exec");
        (status, text(stdout), text(stderr))
    }
}
