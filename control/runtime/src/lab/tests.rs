use super::*;

#[test]
fn lab_names_must_be_safe_in_every_docker_name_and_host_name() {
    for good in ["meshlab", "mltest-4242-7", "a", "lab2", &"x".repeat(32)] {
        assert!(validate_lab_name(good).is_ok(), "{good}");
    }
    let cases = [
        ("", "it is empty"),
        ("MyLab", "lowercase"),
        ("my_lab", "lowercase"),
        ("my lab", "lowercase"),
        ("-lab", "start and end"),
        ("lab-", "start and end"),
        ("bridge", "Docker's own networks"),
    ];
    for (bad, why) in cases {
        let err = validate_lab_name(bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
        assert!(err.contains("hint: "), "{err}");
    }
    assert!(validate_lab_name(&"x".repeat(33)).is_err());
}

#[test]
fn names_follow_one_scheme() {
    assert_eq!(network_name("demo"), "demo");
    assert_eq!(volume_name("demo"), "demo-state");
    assert_eq!(container_name("demo", "control"), "demo-control");
}

#[test]
fn a_port_someone_listens_on_is_not_free() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(!port_free(IpAddr::from([127, 0, 0, 1]), port));
    drop(listener);
    assert!(port_free(IpAddr::from([127, 0, 0, 1]), port));
}
