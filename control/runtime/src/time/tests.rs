use std::time::{Duration, SystemTime};

use super::parse;

fn at(seconds: u64, nanos: u32) -> Option<SystemTime> {
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
}

#[test]
fn docker_timestamps_parse_to_system_time() {
    let cases = [
        ("1970-01-01T00:00:00Z", at(0, 0)),
        (
            "2024-05-01T12:34:56.123456789Z",
            at(1_714_566_896, 123_456_789),
        ),
        ("2024-05-01T12:34:56.5Z", at(1_714_566_896, 500_000_000)),
        ("2024-02-29T00:00:00Z", at(1_709_164_800, 0)),
        ("2024-05-01T14:34:56+02:00", at(1_714_566_896, 0)),
        ("2000-03-01T00:00:00Z", at(951_868_800, 0)),
        // Docker's "never".
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("2024-13-01T00:00:00Z", None),
        ("2024-05-01 12:34:56", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text), expected, "{text}");
    }
}
