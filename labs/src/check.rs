//! Evaluating expectations: pure functions from what was observed (request
//! outcomes, access log lines, metric scrapes, cluster names) to a verdict with the
//! observed numbers and the expected bounds in words, so a failed check can say
//! "observed 0 of 30 with stars, expected 3..30".

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::format::{Bounds, Expect, Stars, parse_window};
use crate::probe::Outcome;

/// The marker Istio's tests use for "the page has rating stars".
pub const STAR: &str = "glyphicon glyphicon-star";
/// reviews v2's star colour class.
pub const BLACK: &str = "text-black-500";
/// reviews v3's star colour class.
pub const RED: &str = "text-red-500";

/// One expectation's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether it holds.
    pub passed: bool,
    /// What was seen, with numbers.
    pub observed: String,
    /// What was wanted.
    pub expected: String,
}

/// The texts to look for in bodies for these expectations.
pub fn markers(expects: &[Expect]) -> Vec<String> {
    let mut markers: Vec<String> = Vec::new();
    let mut add = |m: &str| {
        if !markers.iter().any(|x| x == m) {
            markers.push(m.to_owned());
        }
    };
    for expect in expects {
        if let Some(body) = &expect.body {
            add(body);
        }
        match expect.stars {
            Some(Stars::Any) => add(STAR),
            Some(Stars::Black) => {
                add(STAR);
                add(BLACK);
            }
            Some(Stars::Red) => {
                add(STAR);
                add(RED);
            }
            None => {}
        }
    }
    markers
}

fn has(outcome: &Outcome, marker: &str) -> bool {
    outcome.matched.iter().any(|m| m == marker)
}

/// Counts the outcomes an expectation on responses matches and compares with its
/// bounds. `None` when the expectation is not about responses.
pub fn responses(expect: &Expect, outcomes: &[Outcome]) -> Option<Verdict> {
    let total = outcomes.len() as u64;
    let bounds = expect.count.unwrap_or(Bounds::ALL);
    let (what, matched): (String, u64) = if let Some(status) = expect.status {
        (
            format!("status {status}"),
            count(outcomes, |o| o.status == status),
        )
    } else if let Some(exit) = expect.exit {
        (
            format!("curl exit code {exit}"),
            count(outcomes, |o| o.exit == exit),
        )
    } else if let Some(body) = &expect.body {
        (
            format!("body containing {body:?}"),
            count(outcomes, |o| has(o, body)),
        )
    } else if let Some(stars) = expect.stars {
        let (what, matches): (&str, fn(&Outcome) -> bool) = match stars {
            Stars::Any => ("pages with stars", |o| has(o, STAR)),
            Stars::Black => ("pages with black stars (v2)", |o| {
                has(o, STAR) && has(o, BLACK)
            }),
            Stars::Red => ("pages with red stars (v3)", |o| has(o, STAR) && has(o, RED)),
        };
        (what.to_owned(), count(outcomes, matches))
    } else if let Some(window) = &expect.latency {
        let (min, max) = parse_window(window).ok()?;
        let within = |o: &Outcome| {
            let took = Duration::from_millis(o.millis);
            took >= min && max.is_none_or(|max| took <= max)
        };
        (format!("answers within {window}"), count(outcomes, within))
    } else {
        return None;
    };
    let mut observed = format!("{matched} of {total} {what}");
    if expect.latency.is_some() {
        observed.push_str(&format!(" (took {})", latencies(outcomes)));
    }
    if expect.status.is_some() || expect.exit.is_some() {
        observed.push_str(&format!(" ({})", distribution(outcomes)));
    }
    Some(Verdict {
        passed: bounds.contains(matched, total),
        observed,
        expected: format!("{} {what}", bounds.describe(Some(total))),
    })
}

fn count(outcomes: &[Outcome], f: impl Fn(&Outcome) -> bool) -> u64 {
    outcomes.iter().filter(|o| f(o)).count() as u64
}

/// `200×28, 503×2` or `000 exit 56×3`.
pub fn distribution(outcomes: &[Outcome]) -> String {
    let mut seen: BTreeMap<(u16, i32), u64> = BTreeMap::new();
    for outcome in outcomes {
        *seen.entry((outcome.status, outcome.exit)).or_default() += 1;
    }
    seen.iter()
        .map(|((status, exit), n)| match exit {
            0 => format!("{status}×{n}"),
            exit => format!("{status:03} exit {exit}×{n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `min 5.9s, median 6.0s, max 6.1s`, or the one latency.
fn latencies(outcomes: &[Outcome]) -> String {
    let mut millis: Vec<u64> = outcomes.iter().map(|o| o.millis).collect();
    millis.sort_unstable();
    let secs = |ms: u64| format!("{:.2}s", ms as f64 / 1000.0);
    match millis.as_slice() {
        [] => "nothing".to_owned(),
        [one] => secs(*one),
        all => format!(
            "min {}, median {}, max {}",
            secs(all[0]),
            secs(all[all.len() / 2]),
            secs(all[all.len() - 1])
        ),
    }
}

// === Access log ===

/// The RESPONSE_FLAGS field of an access log line in Istio's text format:
/// `[time] "GET / HTTP/1.1" 504 UT …`.
pub fn response_flags(line: &str) -> Option<&str> {
    let start = line.find('"')?;
    let end = start + 1 + line[start + 1..].find('"')?;
    let mut fields = line[end + 1..].split_whitespace();
    fields.next()?;
    fields.next()
}

/// The START_TIME of a line, `2026-11-21T14:10:12.345Z`.
fn start_time(line: &str) -> Option<&str> {
    line.strip_prefix('[')?.split(']').next()
}

/// `time` as Envoy prints START_TIME (UTC, milliseconds), so lines compare as text.
pub fn envoy_time(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Counts the lines written at or after `since` that contain `contains` and carry
/// `flags`.
pub fn log_lines(
    lines: &[String],
    since: SystemTime,
    contains: Option<&str>,
    flags: Option<&str>,
) -> u64 {
    let since = envoy_time(since);
    lines
        .iter()
        .filter(|l| start_time(l).is_some_and(|t| t >= since.as_str()))
        .filter(|l| contains.is_none_or(|c| l.contains(c)))
        .filter(|l| flags.is_none_or(|f| response_flags(l) == Some(f)))
        .count() as u64
}

// === Metrics ===

/// The sum of the series of `name` carrying every label of `labels`, in Prometheus'
/// text format.
pub fn metric_sum(text: &str, name: &str, labels: &BTreeMap<String, String>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, series_labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels.iter().all(|(k, v)| {
                series_labels
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            });
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests;
