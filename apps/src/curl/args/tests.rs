use super::*;

fn parse_ok(args: &[&str]) -> Options {
    match parse(args.iter().map(OsString::from).collect()) {
        Ok(Command::Transfer(opts)) => *opts,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn parse_err(args: &[&str]) -> String {
    match parse(args.iter().map(OsString::from).collect()) {
        Err(e) => e.to_string(),
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn combines_short_flags() {
    let o = parse_ok(&["-sSI", "https://www.google.com"]);
    assert!(o.silent && o.show_error && o.head);
    assert_eq!(o.urls, ["https://www.google.com"]);

    let o = parse_ok(&["-so", "/dev/null", "-w", "%{http_code}", "http://x/"]);
    assert!(o.silent);
    assert_eq!(o.outputs, [PathBuf::from("/dev/null")]);
    assert_eq!(
        o.write_out,
        Some(WriteOut::Format("%{http_code}".to_owned()))
    );

    let o = parse_ok(&["-HHost:httpbin.example.com", "-XPOST", "-o/tmp/x", "u"]);
    assert_eq!(o.headers, ["Host:httpbin.example.com"]);
    assert_eq!(o.method.as_deref(), Some("POST"));
    assert_eq!(o.outputs, [PathBuf::from("/tmp/x")]);
}

#[test]
fn mixes_options_and_urls() {
    let o = parse_ok(&[
        "http://a/",
        "-s",
        "-o",
        "/dev/null",
        "-H",
        "Authorization: Bearer x",
        "-w",
        "%{http_code}\\n",
        "http://b/",
        "--url",
        "http://c/",
    ]);
    assert_eq!(o.urls, ["http://a/", "http://b/", "http://c/"]);
    assert_eq!(o.headers, ["Authorization: Bearer x"]);
}

#[test]
fn reads_values_and_numbers() {
    let o = parse_ok(&[
        "--max-time",
        "1.5",
        "--connect-timeout",
        ".25",
        "--max-redirs",
        "-1",
        "-m",
        "2",
        "--resolve",
        "h:443:127.0.0.1",
        "--cacert",
        "ca.pem",
        "-k",
        "--http1.1",
        "-d",
        "a=1",
        "--data-binary",
        "@body.bin",
        "-b",
        "jar.txt",
        "-c",
        "out.txt",
        "-w",
        "@fmt.txt",
        "x",
    ]);
    assert_eq!(o.max_time, Some(Duration::from_secs(2)));
    assert_eq!(o.connect_timeout, Some(Duration::from_millis(250)));
    assert_eq!(o.max_redirs, None);
    assert_eq!(o.resolve, ["h:443:127.0.0.1"]);
    assert_eq!(o.cacert, Some(PathBuf::from("ca.pem")));
    assert!(o.insecure);
    assert_eq!(o.http_version, HttpVersion::Http11);
    assert_eq!(
        o.data,
        [
            Data::Text("a=1".to_owned()),
            Data::File {
                path: "body.bin".to_owned(),
                strip_newlines: false
            }
        ]
    );
    assert_eq!(o.cookies, ["jar.txt"]);
    assert_eq!(o.cookie_jar, Some(PathBuf::from("out.txt")));
    assert_eq!(o.write_out, Some(WriteOut::File("fmt.txt".to_owned())));
}

#[test]
fn negates_long_flags() {
    let o = parse_ok(&[
        "-s",
        "--no-silent",
        "-L",
        "--no-location",
        "--no-progress-meter",
        "x",
    ]);
    assert!(!o.silent && !o.follow);
    assert_eq!(o.max_redirs, Some(50));
}

#[test]
fn fails_like_curl() {
    let cases: [(&[&str], &str); 9] = [
        (&["--frobnicate", "x"], "option --frobnicate: is unknown"),
        (&["-sZ", "x"], "option -Z: is unknown"),
        (&["--no-output", "x"], "option --no-output: is unknown"),
        (&["x", "-o"], "option -o: requires parameter"),
        (
            &["x", "--max-time"],
            "option --max-time: requires parameter",
        ),
        (
            &["--max-time", "soon", "x"],
            "option --max-time: expected a proper numerical parameter",
        ),
        (
            &["--max-time", "-1", "x"],
            "option --max-time: expected a proper numerical parameter",
        ),
        (&["-s"], "no URL specified"),
        (
            &["-I", "-d", "a", "x"],
            "You can only select one HTTP request method! You asked for both POST (-d, --data) and HEAD (-I, --head).",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(parse_err(args), expected, "{args:?}");
    }
}

#[test]
fn help_and_version_need_no_url() {
    let run = |a: &str| parse(vec![OsString::from(a)]);
    assert!(matches!(run("--help"), Ok(Command::Help)));
    assert!(matches!(run("-V"), Ok(Command::Version)));
}
