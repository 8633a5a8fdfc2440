use std::time::Duration;

use super::{format, parse};

#[test]
fn protobuf_json_form_round_trips() {
    let table = [
        (Duration::ZERO, "0s"),
        (Duration::from_secs(3), "3s"),
        (Duration::from_millis(500), "0.500s"),
        (Duration::from_millis(1500), "1.500s"),
        (Duration::from_micros(1), "0.000001s"),
        (Duration::from_nanos(7), "0.000000007s"),
    ];
    for (duration, text) in table {
        assert_eq!(format(duration), text);
        assert_eq!(parse(text), Some(duration), "{text}");
    }
}

#[test]
fn short_fractions_parse() {
    assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse("0.25s"), Some(Duration::from_millis(250)));
}

#[test]
fn malformed_durations_are_rejected() {
    for text in [
        "",
        "s",
        "3",
        "1.5ms",
        "-1s",
        "1.s2",
        ".5s",
        "1.0000000001s",
        "1e3s",
    ] {
        assert_eq!(parse(text), None, "{text:?}");
    }
}
