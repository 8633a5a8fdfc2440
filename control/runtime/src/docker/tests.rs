use super::*;

#[tokio::test]
async fn a_missing_socket_says_so_and_what_to_do() {
    let err = Docker::connect_to("unix:///nonexistent/docker.sock")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot reach the Docker engine at unix:///nonexistent/docker.sock: no such socket \
         (hint: start Docker, or set DOCKER_HOST)"
    );
}

#[tokio::test]
async fn a_socket_nobody_listens_on_is_an_engine_not_answering() {
    let dir = std::env::temp_dir().join(format!("meshlab-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("docker.sock");
    let _ = std::fs::remove_file(&path);
    // Binding creates the socket file; dropping the listener leaves it behind, unheard.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = Docker::connect_to(&format!("unix://{}", path.display()))
        .await
        .unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(err, RuntimeError::NotAnswering { .. }), "{err:?}");
    assert!(
        err.to_string().contains("nothing listens on the socket"),
        "{err}"
    );
}

#[tokio::test]
async fn only_unix_sockets_are_supported() {
    let err = Docker::connect_to("tcp://127.0.0.1:2375")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnsupportedHost { .. }),
        "{err:?}"
    );
}

#[test]
fn api_versions_compare_numerically() {
    assert_eq!(parse_api("1.41"), Some((1, 41)));
    assert!(parse_api("1.9").unwrap() < MIN_API);
    assert!(parse_api("1.100").unwrap() > MIN_API);
    assert_eq!(parse_api("latest"), None);
}
