use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::format::{Bounds, Expect, Limit, Stars};
use crate::probe::Outcome;

fn page(status: u16, millis: u64, matched: &[&str]) -> Outcome {
    Outcome {
        status,
        exit: 0,
        millis,
        matched: matched.iter().map(|m| (*m).to_owned()).collect(),
    }
}

fn bounds(text: &str) -> Bounds {
    text.parse().unwrap()
}

#[test]
fn bounds_parse_and_hold() {
    assert_eq!(bounds("all"), Bounds::ALL);
    assert_eq!(
        bounds("40..60"),
        Bounds {
            min: Limit::N(40),
            max: Some(Limit::N(60))
        }
    );
    assert!(bounds("40..60").contains(40, 100));
    assert!(bounds("40..60").contains(60, 100));
    assert!(!bounds("40..60").contains(39, 100));
    assert!(!bounds("40..60").contains(61, 100));
    assert!(bounds("none").contains(0, 30));
    assert!(!bounds("none").contains(1, 30));
    assert!(bounds(">=3").contains(30, 30));
    assert!(!bounds(">=3").contains(2, 30));
    assert!(bounds("<=27").contains(0, 30));
    assert!(Bounds::ALL.contains(30, 30));
    assert!(!Bounds::ALL.contains(29, 30));
    assert_eq!(bounds("all").describe(Some(30)), "all 30");
    assert_eq!(bounds(">=1").describe(None), ">= 1");
    assert_eq!(bounds("<=5").describe(None), "<= 5");
    assert!("60..40".parse::<Bounds>().is_err());
    assert!("many".parse::<Bounds>().is_err());
}

#[test]
fn the_tasks_bounds_separate_a_correct_mesh_from_a_broken_one() {
    // traffic shifting: 50/50 over 100 pages must fall in 40..60; all-v1 (0) and
    // all-v3 (100) must not.
    let half = Expect {
        stars: Some(Stars::Red),
        count: Some(bounds("40..60")),
        ..Expect::default()
    };
    let pages = |red: usize| -> Vec<Outcome> {
        (0..100)
            .map(|i| {
                if i < red {
                    page(200, 20, &[STAR, RED])
                } else {
                    page(200, 20, &[])
                }
            })
            .collect()
    };
    assert!(responses(&half, &pages(50)).unwrap().passed);
    assert!(responses(&half, &pages(43)).unwrap().passed);
    assert!(!responses(&half, &pages(0)).unwrap().passed);
    assert!(!responses(&half, &pages(100)).unwrap().passed);
    let verdict = responses(&half, &pages(100)).unwrap();
    assert_eq!(verdict.observed, "100 of 100 pages with red stars (v3)");
    assert_eq!(verdict.expected, "40..60 pages with red stars (v3)");

    // all-v1: no starred page of 30; a single black page fails.
    let none = Expect {
        stars: Some(Stars::Any),
        count: Some(bounds("none")),
        ..Expect::default()
    };
    let mut thirty: Vec<Outcome> = (0..30).map(|_| page(200, 20, &[])).collect();
    assert!(responses(&none, &thirty).unwrap().passed);
    thirty[7] = page(200, 20, &[STAR, BLACK]);
    assert!(!responses(&none, &thirty).unwrap().passed);
}

#[test]
fn star_colours_are_told_apart() {
    let black = Expect {
        stars: Some(Stars::Black),
        ..Expect::default()
    };
    let pages = [page(200, 5, &[STAR, BLACK]), page(200, 5, &[STAR, RED])];
    let verdict = responses(&black, &pages).unwrap();
    assert!(!verdict.passed);
    assert_eq!(verdict.observed, "1 of 2 pages with black stars (v2)");
    assert_eq!(verdict.expected, "all 2 pages with black stars (v2)");
    assert_eq!(markers(&[black]), [STAR.to_owned(), BLACK.to_owned()]);
}

#[test]
fn statuses_exits_and_latency_windows() {
    let outcomes = [
        page(504, 3050, &[]),
        page(504, 3100, &[]),
        Outcome {
            status: 0,
            exit: 56,
            millis: 4,
            matched: Vec::new(),
        },
    ];
    let status = Expect {
        status: Some(504),
        ..Expect::default()
    };
    let verdict = responses(&status, &outcomes).unwrap();
    assert!(!verdict.passed);
    assert_eq!(verdict.observed, "2 of 3 status 504 (000 exit 56×1, 504×2)");
    let window = Expect {
        latency: Some("2.8s..4.5s".to_owned()),
        count: Some(bounds("2")),
        ..Expect::default()
    };
    let verdict = responses(&window, &outcomes).unwrap();
    assert!(verdict.passed, "{verdict:?}");
    assert_eq!(
        verdict.observed,
        "2 of 3 answers within 2.8s..4.5s (took min 0.00s, median 3.05s, max 3.10s)"
    );
    let exit = Expect {
        exit: Some(56),
        count: Some(bounds(">=1")),
        ..Expect::default()
    };
    assert!(responses(&exit, &outcomes).unwrap().passed);
    assert!(
        responses(
            &Expect {
                log: None,
                ..Expect::default()
            },
            &outcomes
        )
        .is_none()
    );
}

#[test]
fn access_log_lines_are_read_in_istios_format() {
    let line = "[2026-11-21T14:10:12.345Z] \"GET /delay/5 HTTP/1.1\" 504 UT response_timeout - \"-\" 0 24 3001 - \"-\" \"curl/8.16.0\" \"id\" \"httpbin.org\" \"1.2.3.4:80\" outbound|80||httpbin.org 10.0.0.5:40000 1.2.3.4:80 10.0.0.5:39999 - default".to_owned();
    let tcp = "[2026-11-21T14:10:13.000Z] \"- - -\" 0 - - - \"-\" 600 4000 20 - \"-\" \"-\" \"-\" \"-\" \"1.2.3.5:443\" outbound|443||www.google.com 10.0.0.5:1 1.2.3.5:443 10.0.0.5:2 www.google.com -".to_owned();
    assert_eq!(response_flags(&line), Some("UT"));
    assert_eq!(response_flags(&tcp), Some("-"));
    let since = UNIX_EPOCH + Duration::from_millis(1_795_270_212_000);
    assert_eq!(envoy_time(since), "2026-11-21T14:10:12.000Z");
    let lines = vec![line, tcp];
    assert_eq!(
        log_lines(&lines, since, Some("outbound|80||httpbin.org"), Some("UT")),
        1
    );
    assert_eq!(log_lines(&lines, since, None, None), 2);
    assert_eq!(
        log_lines(&lines, since + Duration::from_millis(500), None, None),
        1
    );
    assert_eq!(log_lines(&lines, since, None, Some("UH")), 0);
}

#[test]
fn metric_series_are_summed_over_matching_labels() {
    let text = "# TYPE istio_requests_total counter\n\
istio_requests_total{reporter=\"source\",response_code=\"504\",destination_service=\"httpbin.org\"} 3\n\
istio_requests_total{reporter=\"source\",response_code=\"200\",destination_service=\"httpbin.org\"} 7\n\
istio_requests_total{reporter=\"destination\",response_code=\"504\"} 2\n\
istio_request_bytes_count{response_code=\"504\"} 99\n";
    let mut labels = BTreeMap::new();
    assert_eq!(metric_sum(text, "istio_requests_total", &labels), 12.0);
    labels.insert("response_code".to_owned(), "504".to_owned());
    assert_eq!(metric_sum(text, "istio_requests_total", &labels), 5.0);
    labels.insert("reporter".to_owned(), "source".to_owned());
    assert_eq!(metric_sum(text, "istio_requests_total", &labels), 3.0);
}
