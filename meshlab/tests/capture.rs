//! Traffic capture (`meshlab run init`) in real pods on the real engine: a sandbox
//! holding the network namespace, an init container with NET_ADMIN installing the
//! rules, stand-in "sidecars" running as uid 1337 (httpbin, which echoes the Host
//! header, so a redirected request shows where it was going), and an app container.
//! Outbound requests go to an unused address of the lab's own subnet, which only
//! capture can answer.
//!
//! There is no DNS proxy yet, so the DNS checks are indirect: with DNS capture on,
//! TCP to port 53 reaches the httpbin listening on 15053, and the app's UDP lookups
//! fail (nothing answers on 15053) while the proxy's own lookups (uid 1337) still
//! get Docker's embedded resolver; with `--capture-dns false` the app resolves lab
//! names again.
//!
//! Without a reachable engine every test prints "skipped: no Docker" and passes,
//! unless `MESHLAB_REQUIRE_DOCKER` is set: then it fails with the connect error.
//! Each test runs in a lab of its own, removed with purge when the test ends.

#[path = "support/engine.rs"]
mod engine;

use std::net::Ipv4Addr;

use meshlab_control_runtime::{ContainerSpec, ExecSpec, NetworkMode};

use self::engine::{DockerLab as Lab, text};

/// The binary's path inside the image.
const BIN: &str = "/usr/local/bin/meshlab";

/// A command's exit status, stdout and stderr.
#[derive(Debug)]
struct Output {
    status: i64,
    stdout: String,
    stderr: String,
}

impl Lab {
    /// A container in the pod of `sandbox` (sharing its network namespace).
    fn member(&self, sandbox: &str, name: &str, cmd: &[&str]) -> ContainerSpec {
        let mut spec = self.spec(name, cmd);
        spec.network = NetworkMode::Container(sandbox.to_owned());
        spec
    }

    /// Runs an init container in the pod with `args` after `meshlab run init`,
    /// waits for it to exit and returns its exit code and output.
    async fn init(&self, sandbox: &str, name: &str, net_admin: bool, args: &[&str]) -> Output {
        let mut spec = self.member(sandbox, name, &[&[BIN, "run", "init"][..], args].concat());
        if net_admin {
            spec.cap_add = vec!["NET_ADMIN".to_owned()];
        }
        let id = self.run(&spec).await;
        let info = self.wait_exited(&id).await;
        let (stdout, stderr) = self.logs(&id).await;
        Output {
            status: info.exit_code.expect("an exit code"),
            stdout,
            stderr,
        }
    }

    /// The last address of the lab's subnet, which no container gets: a request to
    /// it ends in "no route" or a timeout unless something captures it. (An address
    /// off the lab's network could be answered by whatever the host routes to.)
    async fn unused_address(&self) -> Ipv4Addr {
        let network = self
            .docker
            .ensure_network(&self.name)
            .await
            .expect("network");
        let (base, prefix) = network.subnet.split_once('/').expect("a cidr");
        let base: Ipv4Addr = base.parse().expect("an ipv4 subnet");
        let prefix: u32 = prefix.parse().expect("a prefix length");
        Ipv4Addr::from_bits(base.to_bits() | ((u32::MAX >> prefix) - 1))
    }

    /// Runs `cmd` in the container, as `user` if given.
    async fn exec_as(&self, id: &str, user: Option<&str>, cmd: &[&str]) -> Output {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut spec = ExecSpec::new(cmd.iter().copied());
        spec.user = user.map(str::to_owned);
        let status = self
            .docker
            .exec(id, &spec, &mut stdout, &mut stderr)
            .await
            .expect("exec");
        Output {
            status,
            stdout: text(stdout),
            stderr: text(stderr),
        }
    }
}

const SLEEP: &[&str] = &["/bin/sleep", "infinity"];

/// curl with a deadline, so an uncaptured request to nowhere ends quickly.
fn curl(url: &str) -> Vec<&str> {
    vec!["curl", "-sS", "--max-time", "3", url]
}

#[tokio::test]
async fn a_pod_is_captured_and_its_proxy_is_exempt() {
    let Some(lab) = Lab::new().await else { return };
    let sandbox = lab.run(&lab.spec("pod", &[BIN, "run", "pause"])).await;
    // Another workload on the lab network, named `peer` there; nothing listens on it.
    let mut peer = lab.spec("peer", SLEEP);
    peer.network = NetworkMode::Network {
        name: lab.name.clone(),
        aliases: vec!["peer".to_owned()],
    };
    let peer = lab.run(&peer).await;

    let init = lab.init(&sandbox, "init", true, &[]).await;
    assert_eq!(init.status, 0, "{init:?}");
    eprintln!("meshlab run init printed:\n{}", init.stdout);
    for expected in [
        "traffic capture installed: table ip meshlab with 7 chains and 24 rules",
        "# table ip meshlab (meshlab's traffic capture)",
        "-P OUTPUT ACCEPT  # nat hook output priority -101",
        "-A ISTIO_REDIRECT -p tcp -m comment --comment \"meshlab: outbound tcp -> 15001\" -j \
         REDIRECT --to-ports 15001",
        "--comment \"meshlab: inbound tcp -> 15006\"",
        "--comment \"meshlab: dns over udp to 127.0.0.11 -> 15053\"",
        // Docker's embedded-DNS rules, read back and left alone.
        "# table ip nat (not meshlab's: shown, never changed)",
        "-P OUTPUT ACCEPT  # nat hook output priority -100",
        "-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT",
        "--dport 53 -j DNAT --to-destination 127.0.0.11:",
        "-j SNAT --to-source :53",
    ] {
        assert!(
            init.stdout.contains(expected),
            "no {expected:?} in:\n{}",
            init.stdout
        );
    }

    // Stand-ins for the sidecar's listeners, as the proxy's uid.
    for (name, port) in [
        ("outbound", "15001"),
        ("inbound", "15006"),
        ("dns", "15053"),
    ] {
        let mut spec = lab.member(
            &sandbox,
            name,
            &[BIN, "run", "app", "httpbin", "--port", port],
        );
        spec.user = Some("1337".to_owned());
        let id = lab.run(&spec).await;
        lab.wait_for_log(&id, "listening").await;
    }
    let app = lab.run(&lab.member(&sandbox, "app", SLEEP)).await;
    let proxy = Some("1337");

    // Outbound: an address nothing answers at reaches the outbound listener, which
    // sees where the request was going.
    let nowhere = format!("{}:9999", lab.unused_address().await);
    let url = format!("http://{nowhere}/headers");
    let out = lab.exec_as(&app, None, &curl(&url)).await;
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains(&nowhere), "{out:?}");
    // The proxy's own traffic is not captured: the same request goes nowhere.
    let out = lab.exec_as(&app, proxy, &curl(&url)).await;
    assert!(matches!(out.status, 7 | 28), "{out:?}");
    assert!(!out.stdout.contains(&nowhere), "{out:?}");

    // Inbound: a request for the pod's port 9080, where nothing listens, reaches
    // the inbound listener.
    let pod_ip = lab
        .docker
        .inspect(&sandbox)
        .await
        .expect("the sandbox")
        .ip
        .expect("the pod's address");
    let url = format!("http://{pod_ip}:9080/headers");
    let out = lab.exec_as(&peer, None, &curl(&url)).await;
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains(&format!("{pod_ip}:9080")), "{out:?}");

    // DNS over TCP goes to the DNS port before Docker's DNAT could see it...
    let out = lab
        .exec_as(&app, None, &curl("http://127.0.0.11:53/headers"))
        .await;
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("127.0.0.11:53"), "{out:?}");
    // ...but not the proxy's, which reaches Docker's resolver (no HTTP there).
    let out = lab
        .exec_as(&app, proxy, &curl("http://127.0.0.11:53/headers"))
        .await;
    assert_ne!(out.status, 0, "{out:?}");
    assert!(!out.stdout.contains("127.0.0.11:53"), "{out:?}");
    // DNS over UDP from the app goes to 15053, where nothing answers UDP yet: no
    // name resolves (curl's exit 6)...
    let out = lab.exec_as(&app, None, &curl("http://peer:8080/")).await;
    assert_eq!(out.status, 6, "{out:?}");
    // ...while the proxy still resolves through Docker's rules: `peer` is found, and
    // refuses the connection (exit 7).
    let out = lab.exec_as(&app, proxy, &curl("http://peer:8080/")).await;
    assert_eq!(out.status, 7, "{out:?}");

    // Installing again replaces the rules: without DNS capture the app resolves lab
    // names through Docker, and its request to `peer` is captured.
    let again = lab
        .init(&sandbox, "init-again", true, &["--capture-dns", "false"])
        .await;
    assert_eq!(again.status, 0, "{again:?}");
    assert_eq!(
        again.stdout.matches("# table ip meshlab").count(),
        1,
        "{again:?}"
    );
    assert!(!again.stdout.contains("ISTIO_OUTPUT_DNS"), "{again:?}");
    let out = lab
        .exec_as(&app, None, &curl("http://peer:8080/headers"))
        .await;
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("peer:8080"), "{out:?}");
    let out = lab
        .exec_as(&app, None, &curl("http://127.0.0.11:53/headers"))
        .await;
    assert_ne!(out.status, 0, "no longer captured: {out:?}");
}

#[tokio::test]
async fn init_without_net_admin_fails_with_a_hint() {
    let Some(lab) = Lab::new().await else { return };
    let sandbox = lab.run(&lab.spec("pod", &[BIN, "run", "pause"])).await;
    let init = lab.init(&sandbox, "init", false, &[]).await;
    assert_eq!(init.status, 1, "{init:?}");
    assert_eq!(
        init.stderr.trim_end(),
        "error: cannot program netfilter: operation not permitted (hint: the init container \
         needs the NET_ADMIN capability)"
    );
    assert_eq!(init.stdout, "");
}
