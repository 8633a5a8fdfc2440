use super::*;

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[test]
fn durations_read_as_coreutils_reads_them() {
    assert_eq!(parse(args(&["infinity"])), Ok(None));
    assert_eq!(parse(args(&["1.5"])), Ok(Some(Duration::from_millis(1500))));
    assert_eq!(
        parse(args(&["2m", "3"])),
        Ok(Some(Duration::from_secs(123)))
    );
    assert_eq!(parse(args(&["1h"])), Ok(Some(Duration::from_secs(3600))));
    assert!(parse(args(&["soon"])).is_err());
    assert!(parse(args(&[])).is_err());
}
