//! `meshlab up`, `down` and `status`: a lab's life on the local Docker engine.
//!
//! `up` does the learner's first minute in order — check Docker and the ports, build
//! the image from this very binary (no registry), create the lab's network and state
//! volume, start the control plane, apply the default content and wait until every
//! pod is ready — printing one line per step. Running it again changes nothing and
//! says so.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use meshlab_control::api::{Lines, Manifest, ManifestsRequest};
use meshlab_control::ca::PluggedCa;
use meshlab_control::pod::Pod;
use meshlab_control::run::API_PORT;
use meshlab_control_runtime::lab::volume_name;
use meshlab_control_runtime::{
    ContainerSpec, ContainerSummary, Docker, Mount, Publish, RestartPolicy, State, labels,
    port_free,
};
use meshlab_labs::samples;

use crate::client::Client;
use crate::token;

/// The label on the control container that records the host port of its API.
pub const API_PORT_LABEL: &str = "meshlab.api-port";
/// The label on the control container that records the ingress port on the host.
pub const HTTP_PORT_LABEL: &str = "meshlab.http-port";
/// The label on the control container that records the ingress HTTPS port on the host.
pub const HTTPS_PORT_LABEL: &str = "meshlab.https-port";

/// The labels that record a lab's host ports.
const PORT_LABELS: [&str; 3] = [API_PORT_LABEL, HTTP_PORT_LABEL, HTTPS_PORT_LABEL];
/// The label on the control container that records the SHA-256 of its API token.
pub const TOKEN_LABEL: &str = "meshlab.api-token-sha256";

/// How long `up` waits for the control plane, then for the pods.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
const PODS_TIMEOUT: Duration = Duration::from_secs(120);

/// `meshlab up`'s options.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Host port of the ingress gateway.
    pub http_port: u16,
    /// Host port of the ingress gateway's HTTPS port (8443 in the pod).
    pub https_port: u16,
    /// Host port of the dashboard and API.
    pub dashboard_port: u16,
    /// Skip Bookinfo.
    pub no_bookinfo: bool,
    /// The learner's own CA for workload identities.
    pub plugged_ca: Option<PluggedCa>,
    /// Lifetime of workload certificates (Go duration syntax).
    pub workload_cert_ttl: String,
}

/// Connects to Docker with the runtime's precise errors.
pub async fn docker() -> anyhow::Result<Docker> {
    Ok(Docker::connect().await?)
}

/// The lab's control container, if any.
async fn control_container(docker: &Docker, lab: &str) -> anyhow::Result<Option<ContainerSummary>> {
    let mut found = docker
        .list(lab, &[(labels::ROLE, labels::ROLE_CONTROL)])
        .await?;
    Ok(found.pop())
}

/// The API client of a running lab.
pub async fn client(docker: &Docker, lab: &str) -> anyhow::Result<Client> {
    let Some(control) = control_container(docker, lab).await? else {
        bail!("lab {lab:?} is not up (hint: run `meshlab --name {lab} up`)");
    };
    if control.state != State::Running {
        bail!(
            "the control plane of lab {lab:?} is {} (hint: run `meshlab --name {lab} up` to start it again)",
            control.state
        );
    }
    let port: u16 = control
        .labels
        .get(API_PORT_LABEL)
        .and_then(|p| p.parse().ok())
        .with_context(|| {
            format!("the control container of lab {lab:?} has no {API_PORT_LABEL} label")
        })?;
    let Some(token) = token::read(lab)? else {
        bail!(
            "no API token for lab {lab:?} at {} (hint: run `meshlab --name {lab} up`, which writes it)",
            token::path(lab)?.display()
        );
    };
    Ok(Client::new(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        token,
    ))
}

fn step(message: impl std::fmt::Display) {
    println!("✔ {message}");
}

/// `meshlab up`.
pub async fn up(lab: &str, options: &UpOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    meshlab_control_runtime::validate_lab_name(lab)?;
    let docker = docker().await?;
    step(format_args!("Docker engine reachable at {}", docker.host()));

    let binary = std::env::current_exe().context("cannot find the running meshlab binary")?;
    let images = image_lock().await?;
    let image = docker.ensure_image(&binary).await?;
    let mut changed = image.built;
    step(if image.built {
        format!("image {} built from {}", image.tag, binary.display())
    } else {
        format!("image {} reused", image.tag)
    });

    let token = token::ensure(lab)?;
    let fingerprint = token::fingerprint(&token);
    let existing = control_container(&docker, lab).await?;
    // A control plane that does not know this token (an older lab, or a token file
    // removed) is replaced like one of an older binary.
    let current = existing.as_ref().filter(|c| {
        c.state == State::Running
            && c.image == image.tag
            && c.labels.get(TOKEN_LABEL) == Some(&fingerprint)
    });
    if current.is_none() {
        // A control plane of an older binary, or stopped: replaced (its pods roll to
        // the new image once the new one runs). Its ports are this lab's own.
        let mut own = Vec::new();
        // The lab's own ingress gateway, from an earlier control plane, holds the
        // ingress port until the new control plane replaces it.
        let gateway = docker
            .list(
                lab,
                &[
                    (labels::NAMESPACE, "istio-system"),
                    (labels::DEPLOYMENT, "istio-ingressgateway"),
                ],
            )
            .await?;
        if gateway.iter().any(|c| c.state == State::Running) {
            own.extend([options.http_port, options.https_port]);
        }
        if let Some(stale) = &existing {
            for key in PORT_LABELS {
                own.extend(stale.labels.get(key).and_then(|p| p.parse::<u16>().ok()));
            }
            docker.remove(&stale.id, true).await?;
        }
        preflight_ports(&docker, lab, options, &own).await?;
    }
    let network = docker.ensure_network(lab).await?;
    step(format_args!(
        "network {} ({})",
        network.name, network.subnet
    ));
    let volume = docker.ensure_volume(lab).await?;

    let control = match current {
        Some(control) => {
            step("control plane already running");
            control.clone()
        }
        None => {
            start_control(&docker, lab, &image.tag, &volume, options, &token).await?;
            changed = true;
            step(format_args!(
                "control plane started (state in volume {volume})"
            ));
            control_container(&docker, lab)
                .await?
                .context("the control container vanished right after it started")?
        }
    };
    // The control container uses the image now: a purge leaves it.
    drop(images);
    let api_port = control
        .labels
        .get(API_PORT_LABEL)
        .and_then(|p| p.parse().ok())
        .unwrap_or(options.dashboard_port);
    let client = Client::new(SocketAddr::from((Ipv4Addr::LOCALHOST, api_port)), token);
    wait_healthy(&client).await?;

    let mut defaults = vec![samples::NAMESPACE_DEFAULT, samples::INGRESS_GATEWAY];
    if !options.no_bookinfo {
        defaults.push(samples::BOOKINFO);
    }
    defaults.push(samples::SLEEP);
    let request = ManifestsRequest {
        manifests: defaults
            .iter()
            .map(|s| Manifest {
                file: s.file.to_owned(),
                yaml: s.yaml.to_owned(),
            })
            .collect(),
        namespace: None,
    };
    let applied: Lines = client.post("/api/v1/apply", &request).await?;
    let created = applied
        .lines
        .iter()
        .filter(|l| !l.ends_with(" unchanged"))
        .count();
    changed |= created > 0;
    let names: Vec<&str> = defaults.iter().map(|s| s.file).collect();
    step(format_args!(
        "applied {} ({} objects, {created} changed)",
        names.join(", "),
        applied.lines.len()
    ));

    let pods = wait_pods(&client).await?;
    step(format_args!(
        "{} pods ready in {:.1}s",
        pods.len(),
        started.elapsed().as_secs_f64()
    ));
    if !changed {
        println!("\nLab {lab:?} is already up; nothing changed.");
    }
    println!(
        "\nDashboard and API: http://localhost:{api_port} (`meshlab --name {lab} dashboard` opens it)\n\
         Ingress gateway:   http://localhost:{}/productpage (with the data plane), \
         HTTPS servers on port {}\n\n\
         Next:\n  meshlab --name {lab} get pods\n  \
         meshlab --name {lab} exec deploy/sleep -- curl -s http://productpage:9080/productpage\n  \
         meshlab --name {lab} apply -f <istio-manifest.yaml>",
        options.http_port, options.https_port
    );
    Ok(())
}

/// Checks that the lab's host ports are free; `own` are ports this lab's earlier
/// control plane held (its ingress gateway may still hold one until replaced).
async fn preflight_ports(
    docker: &Docker,
    lab: &str,
    options: &UpOptions,
    own: &[u16],
) -> anyhow::Result<()> {
    let mut owners: BTreeMap<u16, String> = BTreeMap::new();
    for other in docker.labs().await? {
        if other == lab {
            continue;
        }
        if let Some(control) = control_container(docker, &other).await? {
            for key in PORT_LABELS {
                if let Some(port) = control.labels.get(key).and_then(|p| p.parse().ok()) {
                    owners.insert(port, other.clone());
                }
            }
        }
    }
    for (port, flag) in [
        (options.dashboard_port, "--dashboard-port"),
        (options.http_port, "--http-port"),
        (options.https_port, "--https-port"),
    ] {
        if let Some(owner) = owners.get(&port) {
            bail!(
                "port {port} on 127.0.0.1 is used by lab {owner:?} (hint: pick another with {flag}, \
                 or stop that lab with `meshlab --name {owner} down`)"
            );
        }
        if !own.contains(&port) && !port_free(Ipv4Addr::LOCALHOST.into(), port) {
            bail!(
                "port {port} on 127.0.0.1 is already in use (hint: stop what uses it, or pick another with {flag})"
            );
        }
    }
    step(format_args!(
        "ports {} and {} (ingress) and {} (dashboard) free on 127.0.0.1",
        options.http_port, options.https_port, options.dashboard_port
    ));
    Ok(())
}

async fn start_control(
    docker: &Docker,
    lab: &str,
    image: &str,
    volume: &str,
    options: &UpOptions,
    token: &str,
) -> anyhow::Result<()> {
    let socket = docker
        .host()
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .context("meshlab needs the Docker engine on a unix socket")?;
    let mut spec = ContainerSpec::new(lab, "control", image);
    spec.cmd = [meshlab_control_runtime::BINARY_PATH, "run", "control"]
        .map(str::to_owned)
        .to_vec();
    spec.env = vec![
        ("MESHLAB_NAME".to_owned(), lab.to_owned()),
        ("MESHLAB_IMAGE".to_owned(), image.to_owned()),
        (
            "MESHLAB_HTTP_PORT".to_owned(),
            options.http_port.to_string(),
        ),
        (
            "MESHLAB_HTTPS_PORT".to_owned(),
            options.https_port.to_string(),
        ),
        (
            meshlab_control::auth::TOKEN_ENV.to_owned(),
            token.to_owned(),
        ),
        (
            meshlab_control::run::WORKLOAD_CERT_TTL_ENV.to_owned(),
            options.workload_cert_ttl.clone(),
        ),
    ];
    if let Some(ca) = &options.plugged_ca {
        // Copied into the state volume by the control plane when it starts.
        spec.files = vec![
            meshlab_control_runtime::File {
                path: meshlab_control::run::PLUGGED_CA_CERT.to_owned(),
                contents: ca.cert_pem.clone().into_bytes(),
                mode: 0o644,
            },
            meshlab_control_runtime::File {
                path: meshlab_control::run::PLUGGED_CA_KEY.to_owned(),
                contents: ca.key_pem.clone().into_bytes(),
                mode: 0o600,
            },
        ];
    }
    spec.labels = BTreeMap::from([
        (labels::ROLE.to_owned(), labels::ROLE_CONTROL.to_owned()),
        (
            API_PORT_LABEL.to_owned(),
            options.dashboard_port.to_string(),
        ),
        (HTTP_PORT_LABEL.to_owned(), options.http_port.to_string()),
        (HTTPS_PORT_LABEL.to_owned(), options.https_port.to_string()),
        (TOKEN_LABEL.to_owned(), token::fingerprint(token)),
    ]);
    spec.mounts = vec![
        Mount::Bind {
            source: socket,
            target: "/var/run/docker.sock".to_owned(),
            read_only: false,
        },
        Mount::Volume {
            name: volume.to_owned(),
            target: meshlab_control_runtime::STATE_DIR.to_owned(),
        },
    ];
    spec.publish = vec![Publish {
        host_ip: Ipv4Addr::LOCALHOST.into(),
        host_port: options.dashboard_port,
        container_port: API_PORT,
    }];
    spec.restart = RestartPolicy::UnlessStopped;
    let id = docker.create_container(&spec).await?;
    docker.start(&id).await?;
    Ok(())
}

/// Holds the user's image lock until dropped.
///
/// `down --purge` removes every meshlab image no container uses, and `up` imports
/// an image before its control container uses it: run side by side (labs of one
/// user, tests in parallel), a purge could remove the image in between, and two
/// imports of one binary would move its tag under a running lab. Both take this
/// lock (an advisory `flock` on `images.lock` in meshlab's config directory), so
/// neither happens.
async fn image_lock() -> anyhow::Result<std::fs::File> {
    let dir = token::config_dir()?;
    let path = dir.join("images.lock");
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(file)
    })
    .await
    .context("the image lock task failed")?
}

async fn wait_healthy(client: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    while !client.healthy().await {
        if Instant::now() > deadline {
            bail!(
                "the control plane did not answer within {}s (hint: `meshlab logs control` shows why)",
                CONTROL_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until every pod is ready, printing each one as it becomes ready.
async fn wait_pods(client: &Client) -> anyhow::Result<Vec<Pod>> {
    let deadline = Instant::now() + PODS_TIMEOUT;
    loop {
        let pods: Vec<Pod> = client.get("/api/v1/pods").await?;
        let failed: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                matches!(
                    p.status.as_str(),
                    "ErrImageNeverPull" | "CreateContainerError"
                )
            })
            .collect();
        if let Some(pod) = failed.first() {
            bail!(
                "pod {}/{} cannot start: {}",
                pod.namespace,
                pod.name,
                pod.message.as_deref().unwrap_or(&pod.status)
            );
        }
        if !pods.is_empty() && pods.iter().all(|p| p.is_ready() && !p.outdated) {
            return Ok(pods);
        }
        if Instant::now() > deadline {
            let waiting: Vec<String> = pods
                .iter()
                .filter(|p| !p.is_ready())
                .map(|p| format!("{}/{} {}", p.namespace, p.name, p.status))
                .collect();
            bail!(
                "pods not ready after {}s: {} (hint: `meshlab get pods -A` and `meshlab logs POD`)",
                PODS_TIMEOUT.as_secs(),
                waiting.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `meshlab down [--purge]`.
pub async fn down(lab: &str, purge: bool) -> anyhow::Result<()> {
    meshlab_control_runtime::validate_lab_name(lab)?;
    let docker = docker().await?;
    let images = if purge {
        Some(image_lock().await?)
    } else {
        None
    };
    let removed = docker.remove_lab(lab, purge).await?;
    drop(images);
    if purge {
        token::remove(lab)?;
    }
    if removed.is_empty() {
        println!("lab {lab:?} has nothing to remove");
        return Ok(());
    }
    step(format_args!(
        "removed {} containers and {} networks of lab {lab:?}",
        removed.containers.len(),
        removed.networks.len()
    ));
    if purge {
        step(format_args!("removed volume {}", volume_name(lab)));
    } else {
        println!(
            "  state kept in volume {} (remove it with `meshlab --name {lab} down --purge`)",
            volume_name(lab)
        );
    }
    Ok(())
}

/// `meshlab status`.
pub async fn status(lab: &str) -> anyhow::Result<()> {
    let docker = docker().await?;
    let Some(control) = control_container(&docker, lab).await? else {
        println!("lab {lab:?} is not up (run `meshlab --name {lab} up`)");
        return Ok(());
    };
    println!("lab:            {lab}");
    println!("control plane:  {} ({})", control.state, control.status);
    println!("image:          {}", control.image);
    if let Some(port) = control.labels.get(API_PORT_LABEL) {
        println!("dashboard/API:  http://localhost:{port}");
    }
    if control.state == State::Running {
        let client = client(&docker, lab).await?;
        let pods: Vec<Pod> = client.get("/api/v1/pods").await?;
        let ready = pods.iter().filter(|p| p.is_ready()).count();
        println!("pods:           {ready}/{} ready", pods.len());
        for pod in pods.iter().filter(|p| !p.is_ready()) {
            println!(
                "  {}/{}: {}{}",
                pod.namespace,
                pod.name,
                pod.status,
                pod.message
                    .as_deref()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
