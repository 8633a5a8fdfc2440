use super::*;
use crate::resource::core::{ContainerPort, EnvVar};

fn container(image: &str) -> Container {
    Container {
        name: "app".into(),
        image: image.into(),
        image_pull_policy: None,
        command: Vec::new(),
        args: Vec::new(),
        working_dir: None,
        ports: Vec::new(),
        env: Vec::new(),
        resources: None,
        security_context: None,
        volume_mounts: Vec::new(),
        readiness_probe: None,
        liveness_probe: None,
        startup_probe: None,
    }
}

fn env(launch: &Launch, name: &str) -> Option<String> {
    launch
        .env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn bookinfo_images_carry_their_baked_in_environment() {
    let v3 = launch(&container(
        "registry.istio.io/release/examples-bookinfo-reviews-v3:1.20.3",
    ))
    .unwrap();
    assert_eq!(v3.app, "reviews");
    assert_eq!(env(&v3, "STAR_COLOR").as_deref(), Some("red"));
    assert_eq!(env(&v3, "ENABLE_RATINGS").as_deref(), Some("true"));
    assert_eq!(
        v3.cmd,
        [
            "/usr/local/bin/meshlab",
            "run",
            "app",
            "reviews",
            "--port",
            "9080"
        ]
    );

    let details = launch(&container(
        "docker.io/istio/examples-bookinfo-details-v2:1.18.0",
    ))
    .unwrap();
    assert_eq!(
        env(&details, "ENABLE_EXTERNAL_BOOK_SERVICE").as_deref(),
        Some("true")
    );

    let faulty = launch(&container("istio/examples-bookinfo-ratings-v-faulty")).unwrap();
    assert_eq!(env(&faulty, "SERVICE_VERSION").as_deref(), Some("v-faulty"));
}

#[test]
fn the_manifest_env_overrides_the_image_defaults() {
    let mut c = container("docker.io/istio/examples-bookinfo-details-v2:1.20.3");
    c.env.push(EnvVar {
        name: "DO_NOT_ENCRYPT".into(),
        value: Some("true".into()),
        value_from: None,
    });
    c.env.push(EnvVar {
        name: "ENABLE_EXTERNAL_BOOK_SERVICE".into(),
        value: Some("false".into()),
        value_from: None,
    });
    let launch = launch(&c).unwrap();
    assert_eq!(env(&launch, "DO_NOT_ENCRYPT").as_deref(), Some("true"));
    assert_eq!(
        env(&launch, "ENABLE_EXTERNAL_BOOK_SERVICE").as_deref(),
        Some("false")
    );
    assert_eq!(
        launch
            .env
            .iter()
            .filter(|(k, _)| k == "ENABLE_EXTERNAL_BOOK_SERVICE")
            .count(),
        1
    );
}

#[test]
fn httpbin_listens_where_its_image_did() {
    let go = launch(&container("docker.io/mccutchen/go-httpbin:v2.15.0")).unwrap();
    assert_eq!((go.app, go.port), ("httpbin", Some(8080)));
    let mut kong = container("docker.io/kong/httpbin");
    kong.ports.push(ContainerPort {
        container_port: 80,
        name: None,
        protocol: None,
    });
    assert_eq!(launch(&kong).unwrap().port, Some(80));
}

#[test]
fn the_python_httpbin_servers_command_binds_the_built_in_httpbin() {
    let mut c = container("docker.io/kennethreitz/httpbin");
    c.command = [
        "gunicorn",
        "--access-logfile",
        "-",
        "-b",
        "0.0.0.0:80",
        "httpbin:app",
    ]
    .map(String::from)
    .to_vec();
    let launch = launch(&c).unwrap();
    assert_eq!(launch.cmd[2..], ["app", "httpbin", "--port", "80"]);

    c.command = ["gunicorn", "--bind=0.0.0.0:nine"]
        .map(String::from)
        .to_vec();
    assert!(matches!(
        super::launch(&c),
        Err(CatalogError::UnsupportedArgs { .. })
    ));
    // Only the httpbin images have gunicorn.
    let mut other = container("curlimages/curl");
    other.command = vec!["gunicorn".into()];
    assert!(matches!(
        super::launch(&other),
        Err(CatalogError::UnknownCommand { .. })
    ));
}

#[test]
fn the_sleep_samples_command_runs_as_written() {
    let mut c = container("curlimages/curl");
    c.command = vec!["/bin/sleep".into(), "infinity".into()];
    let launch = launch(&c).unwrap();
    assert_eq!(launch.app, "sleep");
    assert_eq!(launch.cmd, ["/bin/sleep", "infinity"]);
    assert_eq!(launch.port, None);
}

#[test]
fn what_meshlab_cannot_provide_is_named() {
    let err = launch(&container("nginx:1.25")).unwrap_err();
    assert!(matches!(err, CatalogError::UnknownImage { .. }));
    assert!(err.to_string().contains("nothing is ever pulled"));

    let err = launch(&container("istio/examples-bookinfo-ratings-v2:1.20.3")).unwrap_err();
    assert!(err.to_string().contains("MongoDB or MySQL"), "{err}");

    let mut c = container("curlimages/curl");
    c.command = vec!["/bin/sh".into(), "-c".into(), "sleep 1".into()];
    let err = launch(&c).unwrap_err();
    assert!(err.to_string().contains("\"/bin/sh\""), "{err}");
}

#[test]
fn repositories_are_read_without_tag_or_digest() {
    assert_eq!(
        repository("localhost:5000/kong/httpbin:1"),
        "localhost:5000/kong/httpbin"
    );
    assert_eq!(
        repository("Istio/Examples-Bookinfo-Reviews-V1@sha256:abc"),
        "istio/examples-bookinfo-reviews-v1"
    );
}

#[test]
fn the_fortio_image_runs_fortio_server_unless_told_otherwise() {
    let mut c = container("docker.io/fortio/fortio:latest_release");
    c.ports.push(ContainerPort {
        container_port: 8080,
        name: Some("http-fortio".into()),
        protocol: None,
    });
    let server = launch(&c).unwrap();
    assert_eq!(server.app, "fortio");
    assert_eq!(server.cmd, ["/usr/bin/fortio", "server"]);
    assert_eq!(server.port, Some(8080));

    c.args = vec![
        "load".into(),
        "-n".into(),
        "5".into(),
        "http://httpbin:8000/".into(),
    ];
    assert_eq!(
        launch(&c).unwrap().cmd,
        ["/usr/bin/fortio", "load", "-n", "5", "http://httpbin:8000/"]
    );

    c.command = vec!["/usr/bin/fortio".into(), "server".into()];
    c.args.clear();
    assert_eq!(launch(&c).unwrap().cmd, ["/usr/bin/fortio", "server"]);
}
