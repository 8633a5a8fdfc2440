//! meshlab's Docker layer (`meshlab-control-runtime`) against the real engine: the
//! image made from this very binary, the lab's network and volume, pods sharing a
//! network namespace, DNS aliases and search domains, files, exec, logs, clean-up.
//!
//! Without a reachable engine every test prints "skipped: no Docker" and passes,
//! unless `MESHLAB_REQUIRE_DOCKER` is set (as `.ci/run` does): then it fails with the
//! connect error. Each test runs in a lab of its own, `mltest-<pid>-<n>`, which is
//! removed with purge when the test ends, pass or fail.

#[path = "support/engine.rs"]
mod engine;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use meshlab_control_runtime::{
    ContainerSpec, ExecSpec, File, NetworkMode, Publish, RuntimeError, labels,
};

use self::engine::{DockerLab as Lab, MESHLAB, strings};

const HTTPBIN: &[&str] = &["/usr/local/bin/meshlab", "run", "app", "httpbin"];
const SLEEP: &[&str] = &["/bin/sleep", "infinity"];

#[tokio::test]
async fn the_image_is_built_once_and_runs_this_binary() {
    let Some(lab) = Lab::new().await else { return };
    let again = lab
        .docker
        .ensure_image(Path::new(MESHLAB))
        .await
        .expect("the image again");
    assert!(!again.built, "an unchanged binary reuses its image");
    assert_eq!(again.tag, lab.image.tag);
    assert_eq!(again.id, lab.image.id);
    let hash = lab
        .image
        .tag
        .strip_prefix("meshlab:")
        .expect("meshlab:<hash>");
    assert!(
        hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );

    // The binary by its path, and as `curl` through the link on PATH: port 1 refuses,
    // so curl prints 000 and exits 7, as curl does.
    let write_code = [
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://127.0.0.1:1/",
    ];
    let by_path = [&["/usr/local/bin/meshlab", "curl"][..], &write_code].concat();
    let by_link = [&["curl"][..], &write_code].concat();
    for (name, cmd) in [("by-path", by_path), ("by-link", by_link)] {
        let id = lab.run(&lab.spec(name, &cmd)).await;
        let info = lab.wait_exited(&id).await;
        assert_eq!(info.exit_code, Some(7), "{name}: {info:?}");
        assert_eq!(lab.logs(&id).await.0, "000", "{name}");
        assert_eq!(info.name, format!("{}-{name}", lab.name));
        assert_eq!(info.image, lab.image.tag);
        assert_eq!(info.labels.get(labels::LAB), Some(&lab.name));
        // Both are set; for a process this short-lived the engine may record its end
        // before its start, so their order is not checked.
        assert!(
            info.started_at.is_some() && info.finished_at.is_some(),
            "{info:?}"
        );
    }
}

#[tokio::test]
async fn network_and_volume_are_idempotent_and_names_are_guarded() {
    let Some(lab) = Lab::new().await else { return };
    let network = lab.docker.ensure_network(&lab.name).await.expect("network");
    assert_eq!(
        lab.docker.ensure_network(&lab.name).await.expect("again"),
        network
    );
    assert_eq!(network.name, lab.name);
    assert!(network.subnet.contains('/'), "{network:?}");
    let volume = lab.docker.ensure_volume(&lab.name).await.expect("volume");
    assert_eq!(volume, format!("{}-state", lab.name));
    assert_eq!(
        lab.docker.ensure_volume(&lab.name).await.expect("again"),
        volume
    );
    assert!(lab.docker.lab_exists(&lab.name).await.expect("labs"));

    let holder = lab.spec("holder", SLEEP);
    lab.docker.create_container(&holder).await.expect("created");
    let again = lab.docker.create_container(&holder).await.unwrap_err();
    assert!(
        matches!(again, RuntimeError::AlreadyExists { .. }),
        "{again}"
    );

    // Lab "mltest-<pid>" wants "<n>-holder", which is this lab's holder's Docker name.
    let (other_lab, n) = lab.name.rsplit_once('-').expect("mltest-<pid>-<n>");
    let intruder = ContainerSpec::new(other_lab, format!("{n}-holder"), &lab.image.tag);
    let err = lab.docker.create_container(&intruder).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "a container named {0}-holder already exists and belongs to lab {0}, not to lab \
             {other_lab} (hint: remove it with `docker rm -f {0}-holder`, or choose another \
             lab name with --name)",
            lab.name
        )
    );

    // A published host port someone holds: the container cannot start, and says why.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let mut publisher = lab.spec("publisher", SLEEP);
    publisher.publish = vec![Publish {
        host_ip: IpAddr::from([127, 0, 0, 1]),
        host_port: taken.local_addr().expect("address").port(),
        container_port: 8080,
    }];
    let id = lab
        .docker
        .create_container(&publisher)
        .await
        .expect("created");
    let err = lab.docker.start(&id).await.unwrap_err();
    assert!(matches!(err, RuntimeError::PortInUse { .. }), "{err}");

    let missing = format!("{}-missing", lab.name);
    let err = lab.docker.inspect(&missing).await.unwrap_err();
    assert!(matches!(err, RuntimeError::NotFound { .. }), "{err}");
    let err = lab
        .docker
        .logs(&missing, false, None, Vec::new(), Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NotFound { .. }), "{err}");
    let mut homeless = lab.spec("homeless", SLEEP);
    homeless.image = "meshlab:000000000000".to_owned();
    let err = lab.docker.create_container(&homeless).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no image named meshlab:000000000000 (hint: meshlab never pulls"),
        "{err}"
    );
}

#[tokio::test]
async fn pod_members_share_loopback_and_exec_passes_exit_codes_through() {
    let Some(lab) = Lab::new().await else { return };
    let app = lab.run(&lab.spec("app", HTTPBIN)).await;
    let mut client = lab.spec("client", SLEEP);
    client.network = NetworkMode::Container(app.clone());
    client.files = vec![File {
        path: "/etc/meshlab/upload.txt".to_owned(),
        contents: b"uploaded before start".to_vec(),
        mode: 0o600,
    }];
    let client = lab.run(&client).await;
    let stderr = lab.wait_for_log(&app, "listening").await;
    assert!(stderr.contains("httpbin"), "{stderr}");

    let (status, stdout, _) = lab
        .exec(&client, &["curl", "-s", "http://127.0.0.1:8080/ip"])
        .await;
    assert_eq!(status, 0, "{stdout}");
    assert!(stdout.contains("127.0.0.1"), "{stdout}");

    // The file put in before start is there: curl sends it, httpbin echoes it.
    let post = [
        "curl",
        "-s",
        "--data-binary",
        "@/etc/meshlab/upload.txt",
        "http://127.0.0.1:8080/post",
    ];
    let (status, stdout, _) = lab.exec(&client, &post).await;
    assert_eq!(status, 0, "{stdout}");
    assert!(stdout.contains("uploaded before start"), "{stdout}");

    // Exit statuses pass through exactly, stderr stays stderr.
    let (status, stdout, stderr) = lab
        .exec(&client, &["curl", "-sS", "http://127.0.0.1:1/"])
        .await;
    assert_eq!((status, stdout.as_str()), (7, ""));
    assert!(stderr.starts_with("curl: (7)"), "{stderr}");
    let (status, _, _) = lab.exec(&client, &["no-such-command"]).await;
    assert!(matches!(status, 126 | 127), "{status}");

    let app_info = lab.docker.inspect(&app).await.expect("app");
    let network = lab.docker.ensure_network(&lab.name).await.expect("network");
    let ip = app_info
        .ip
        .expect("the app has an address on the lab network");
    let prefix = network
        .subnet
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    assert!(
        ip.to_string().starts_with(&prefix),
        "{ip} in {}",
        network.subnet
    );
    assert_eq!(lab.docker.inspect(&client).await.expect("client").ip, None);

    lab.docker
        .stop(&client, Duration::from_secs(5))
        .await
        .expect("stopped");
    let err = lab
        .docker
        .exec(&client, &ExecSpec::new(["curl"]), Vec::new(), Vec::new())
        .await;
    assert!(
        matches!(err, Err(RuntimeError::NotRunning { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn aliases_and_search_domains_resolve_short_service_names() {
    let Some(lab) = Lab::new().await else { return };
    let mut server = lab.spec("httpbin", HTTPBIN);
    server.network = NetworkMode::Network {
        name: lab.name.clone(),
        aliases: strings(&["httpbin.foo.svc.cluster.local"]),
    };
    let server = lab.run(&server).await;
    let mut client = lab.spec("sleep", SLEEP);
    client.dns_search = strings(&[
        "foo.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ]);
    client.dns_options = strings(&["ndots:5"]);
    let client = lab.run(&client).await;
    lab.wait_for_log(&server, "listening").await;

    for url in [
        "http://httpbin:8080/ip",
        "http://httpbin.foo:8080/ip",
        "http://httpbin.foo.svc.cluster.local:8080/ip",
    ] {
        let (status, stdout, stderr) = lab
            .exec(
                &client,
                &["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url],
            )
            .await;
        assert_eq!((status, stdout.as_str()), (0, "200"), "{url}: {stderr}");
    }
}

#[tokio::test]
async fn removing_a_lab_with_purge_leaves_nothing_labelled() {
    let Some(lab) = Lab::new().await else { return };
    lab.docker.ensure_volume(&lab.name).await.expect("volume");
    lab.run(&lab.spec("running", SLEEP)).await;
    lab.docker
        .create_container(&lab.spec("created", SLEEP))
        .await
        .expect("created");

    let kept = lab.docker.remove_lab(&lab.name, false).await.expect("down");
    assert_eq!(kept.containers.len(), 2, "{kept:?}");
    assert_eq!(kept.networks, std::slice::from_ref(&lab.name));
    assert!(
        kept.volumes.is_empty(),
        "state survives a down without purge"
    );
    assert!(lab.docker.lab_exists(&lab.name).await.expect("labs"));

    let removed = lab.docker.remove_lab(&lab.name, true).await.expect("purge");
    assert_eq!(removed.volumes, [format!("{}-state", lab.name)]);
    assert!(
        lab.docker
            .list(&lab.name, &[])
            .await
            .expect("list")
            .is_empty()
    );
    assert!(!lab.docker.labs().await.expect("labs").contains(&lab.name));
    let nothing = lab.docker.remove_lab(&lab.name, true).await.expect("again");
    assert!(
        nothing.containers.is_empty() && nothing.networks.is_empty() && nothing.volumes.is_empty()
    );
}
