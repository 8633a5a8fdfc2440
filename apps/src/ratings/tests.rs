use super::*;

#[test]
fn parse_int_reads_leading_digits_as_javascript_does() {
    assert_eq!(js_parse_int("0"), Some(0));
    assert_eq!(js_parse_int("12abc"), Some(12));
    assert_eq!(js_parse_int("7?x=1"), Some(7));
    assert_eq!(js_parse_int(" -3"), Some(-3));
    assert_eq!(js_parse_int("abc"), None);
    assert_eq!(js_parse_int(""), None);
}
