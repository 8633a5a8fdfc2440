use super::*;

const NOW: i64 = 1_700_000_000;

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URL")
}

fn jar_with(set_cookies: &[(&str, &str)]) -> CookieJar {
    let mut jar = CookieJar::default();
    for (origin, header) in set_cookies {
        jar.store(header, &url(origin), NOW);
    }
    jar
}

#[test]
fn sends_matching_cookies() {
    let jar = jar_with(&[
        ("http://shop.example.com/cart/add", "session=abc; Path=/"),
        ("http://shop.example.com/cart/add", "item=42"),
        ("http://shop.example.com/", "wide=1; Domain=example.com"),
        ("https://shop.example.com/", "tls=1; Secure"),
        ("http://shop.example.com/", "old=1; Max-Age=0"),
    ]);
    let cases = [
        (
            "http://shop.example.com/cart",
            Some("item=42; session=abc; wide=1"),
        ),
        (
            "http://shop.example.com/cart/x",
            Some("item=42; session=abc; wide=1"),
        ),
        (
            "http://shop.example.com/cartography",
            Some("session=abc; wide=1"),
        ),
        ("http://api.example.com/", Some("wide=1")),
        (
            "https://shop.example.com/",
            Some("session=abc; wide=1; tls=1"),
        ),
        ("http://other.org/", None),
    ];
    for (target, expected) in cases {
        assert_eq!(
            jar.header(&url(target), NOW).as_deref(),
            expected,
            "{target}"
        );
    }
}

#[test]
fn rejects_cookies_the_origin_may_not_set() {
    let jar = jar_with(&[
        ("http://a.example.com/", "x=1; Domain=other.com"),
        ("http://a.example.com/", "y=1; Secure"),
        ("http://10.0.0.1/", "z=1; Domain=0.0.1"),
        ("http://a.example.com/", "novalue"),
    ]);
    assert_eq!(jar.to_netscape(NOW), JAR_HEADER);
}

#[test]
fn expiry_and_replacement() {
    let mut jar = jar_with(&[
        ("http://h/", "a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"),
        ("http://h/", "b=1; Max-Age=60"),
        ("http://h/", "c=1"),
    ]);
    assert_eq!(
        jar.header(&url("http://h/"), NOW).as_deref(),
        Some("b=1; c=1")
    );
    assert_eq!(
        jar.header(&url("http://h/"), NOW + 61).as_deref(),
        Some("c=1")
    );
    jar.store("c=2", &url("http://h/"), NOW);
    jar.store("b=; Max-Age=-1", &url("http://h/"), NOW);
    assert_eq!(jar.header(&url("http://h/"), NOW).as_deref(), Some("c=2"));
}

#[test]
fn netscape_round_trip() {
    let jar = jar_with(&[
        ("http://127.0.0.1:8000/cookies/set", "session=abc"),
        (
            "http://www.example.com/",
            "pref=dark; Domain=example.com; Path=/app; Max-Age=100; HttpOnly",
        ),
    ]);
    let text = jar.to_netscape(NOW);
    let body: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("# "))
        .collect();
    assert_eq!(
        body,
        [
            "127.0.0.1\tFALSE\t/cookies\tFALSE\t0\tsession\tabc",
            "#HttpOnly_.example.com\tTRUE\t/app\tFALSE\t1700000100\tpref\tdark",
        ]
    );
    let mut loaded = CookieJar::default();
    loaded.load_netscape(&text, NOW);
    assert_eq!(loaded.cookies, jar.cookies);
}

#[test]
fn loads_curl_jar_files() {
    let text = "# Netscape HTTP Cookie File\n\
        # comment\n\
        \n\
        example.com\tFALSE\t/\tFALSE\t0\ta\t1\r\n\
        .example.com\tTRUE\t/\tTRUE\t2000000000\tb\t2\n\
        example.com\tFALSE\t/\tFALSE\t1000\texpired\tx\n\
        example.com\tFALSE\t/\tFALSE\t0\tempty\n\
        not a cookie line\n";
    let mut jar = CookieJar::default();
    jar.load_netscape(text, NOW);
    assert_eq!(
        jar.header(&url("https://example.com/"), NOW).as_deref(),
        Some("a=1; b=2; empty=")
    );
    assert_eq!(
        jar.header(&url("http://www.example.com/"), NOW).as_deref(),
        None
    );
}

#[test]
fn parses_cookie_dates() {
    let cases = [
        ("Wed, 21 Oct 2015 07:28:00 GMT", Some(1_445_412_480)),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", Some(1_445_412_480)),
        ("Thu Jan  1 00:00:00 1970", Some(0)),
        ("29 Feb 2024 12:00:00", Some(1_709_208_000)),
        ("Oct 2015 07:28:00", None),
        ("21 Oct 2015 25:00:00", None),
    ];
    for (date, expected) in cases {
        assert_eq!(parse_http_date(date), expected, "{date}");
    }
}
