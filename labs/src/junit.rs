//! JUnit XML from a lab's events (`meshlab lab run --junit FILE`), so CI systems show
//! each check as a test case: `<lab>.step<N>` as the class, the check as the name,
//! observed versus expected and the hint in the failure.

use std::fmt::Write;

use crate::runner::Event;

/// One `<testsuites>` document with a suite per lab in `events` (several labs may be
/// run one after another into the same file).
pub fn render(events: &[Event]) -> String {
    let mut suites: Vec<(String, Vec<&Event>, Vec<String>)> = Vec::new();
    for event in events {
        match event {
            Event::Lab { name, .. } => suites.push((name.clone(), Vec::new(), Vec::new())),
            Event::Check { .. } => {
                if let Some(suite) = suites.last_mut() {
                    suite.1.push(event);
                }
            }
            Event::Error { message } => {
                if let Some(suite) = suites.last_mut() {
                    suite.2.push(message.clone());
                }
            }
            _ => {}
        }
    }
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (lab, checks, errors) in &suites {
        let failures = checks
            .iter()
            .filter(|c| matches!(c, Event::Check { passed: false, .. }))
            .count();
        let total_ms: u64 = checks
            .iter()
            .map(|c| match c {
                Event::Check { millis, .. } => *millis,
                _ => 0,
            })
            .sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" time=\"{:.3}\">",
            escape(lab),
            checks.len() + errors.len(),
            errors.len(),
            total_ms as f64 / 1000.0
        );
        for check in checks {
            let Event::Check {
                step,
                name,
                passed,
                observed,
                expected,
                hint,
                millis,
            } = check
            else {
                continue;
            };
            let _ = write!(
                xml,
                "    <testcase classname=\"{}.step{step}\" name=\"{}\" time=\"{:.3}\"",
                escape(lab),
                escape(name),
                *millis as f64 / 1000.0
            );
            if *passed {
                xml.push_str("/>\n");
            } else {
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"observed {}; expected {}\">hint: {}</failure>\n    </testcase>",
                    escape(observed),
                    escape(expected),
                    escape(hint)
                );
            }
        }
        for error in errors {
            let _ = writeln!(
                xml,
                "    <testcase classname=\"{}\" name=\"environment\">\n      <error message=\"{}\"/>\n    </testcase>",
                escape(lab),
                escape(error)
            );
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Text as XML attribute or element content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::runner::Event;

    #[test]
    fn failures_carry_observed_expected_and_hint() {
        let events = vec![
            Event::Lab {
                name: "traffic-shifting".to_owned(),
                title: "Traffic shifting".to_owned(),
                steps: 1,
            },
            Event::Check {
                step: 1,
                name: "all v1 <no stars>".to_owned(),
                passed: true,
                observed: "0 of 30".to_owned(),
                expected: "0".to_owned(),
                hint: String::new(),
                millis: 1500,
            },
            Event::Check {
                step: 2,
                name: "half & half".to_owned(),
                passed: false,
                observed: "90 of 100 pages with red stars (v3)".to_owned(),
                expected: "40..60".to_owned(),
                hint: "check the \"weight\" fields".to_owned(),
                millis: 250,
            },
            Event::Done { passed: false },
        ];
        let xml = render(&events);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>"));
        assert!(xml.contains(
            "<testsuite name=\"traffic-shifting\" tests=\"2\" failures=\"1\" errors=\"0\" time=\"1.750\">"
        ));
        assert!(xml.contains(
            "<testcase classname=\"traffic-shifting.step1\" name=\"all v1 &lt;no stars&gt;\" time=\"1.500\"/>"
        ));
        assert!(xml.contains("name=\"half &amp; half\""));
        assert!(xml.contains(
            "<failure message=\"observed 90 of 100 pages with red stars (v3); expected 40..60\">hint: check the &quot;weight&quot; fields</failure>"
        ));
        assert!(xml.trim_end().ends_with("</testsuites>"));
    }

    #[test]
    fn an_environment_error_is_a_test_error() {
        let events = vec![
            Event::Lab {
                name: "egress".to_owned(),
                title: "Egress".to_owned(),
                steps: 1,
            },
            Event::Error {
                message: "docker: no such container".to_owned(),
            },
        ];
        let xml = render(&events);
        assert!(xml.contains("tests=\"1\" failures=\"0\" errors=\"1\""));
        assert!(xml.contains("<error message=\"docker: no such container\"/>"));
    }
}
