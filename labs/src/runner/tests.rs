use std::sync::Mutex;

use tokio::sync::mpsc;

use super::*;
use crate::catalog;
use crate::check::{RED, STAR};

/// A mesh where reviews always answers v3 (red stars), recording what the runner
/// asked of it.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    /// Whether requests see red stars yet (flips after the first request set, to
    /// show that checks are retried).
    red_after_first: bool,
    sets: Mutex<u32>,
}

impl Fake {
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Environment for Fake {
    type Checkpoint = &'static str;

    async fn apply(&self, files: &[ManifestFile]) -> Result<Vec<String>, EnvError> {
        let names: Vec<String> = files.iter().map(|f| f.file.clone()).collect();
        self.log(format!("apply {}", names.join(",")));
        Ok(names.iter().map(|n| format!("{n} applied")).collect())
    }

    async fn delete(&self, files: &[ManifestFile]) -> Result<Vec<String>, EnvError> {
        self.log(format!("delete {}", files.len()));
        Ok(Vec::new())
    }

    async fn set_mesh_config(&self, key: &str, value: &str) -> Result<String, EnvError> {
        self.log(format!("mesh {key}={value}"));
        Ok(format!("meshConfig.{key} set to {value}"))
    }

    async fn settle(&self) -> Result<(), EnvError> {
        Ok(())
    }

    async fn requests(
        &self,
        source: &Source,
        spec: &probe::Spec,
        progress: &(dyn Fn(u32) + Sync),
    ) -> Result<Vec<Outcome>, EnvError> {
        assert_eq!(*source, Source::Ingress);
        let set = {
            let mut sets = self.sets.lock().unwrap();
            *sets += 1;
            *sets
        };
        let red = !self.red_after_first || set > 1;
        progress(spec.count);
        Ok((0..spec.count)
            .map(|_| Outcome {
                status: 200,
                exit: 0,
                millis: 10,
                matched: if red {
                    vec![STAR.to_owned(), RED.to_owned()]
                } else {
                    Vec::new()
                },
            })
            .collect())
    }

    async fn access_log(&self, _: &Workload) -> Result<Vec<String>, EnvError> {
        Ok(Vec::new())
    }

    async fn metrics(&self, _: &Workload) -> Result<String, EnvError> {
        Ok(String::new())
    }

    async fn clusters(&self, _: &Workload) -> Result<Vec<String>, EnvError> {
        Ok(Vec::new())
    }

    async fn checkpoint(&self) -> Result<&'static str, EnvError> {
        self.log("checkpoint".to_owned());
        Ok("found")
    }

    async fn restore(&self, checkpoint: &'static str) -> Result<Vec<String>, EnvError> {
        self.log(format!("restore {checkpoint}"));
        Ok(vec!["back".to_owned()])
    }
}

async fn run_lab(env: &Fake, name: &str, options: Options) -> (bool, Vec<Event>) {
    let lab = catalog::find(name).unwrap().unwrap();
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let passed = run(env, &lab, options, &sender).await;
    drop(sender);
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    (passed, events)
}

#[tokio::test(start_paused = true)]
async fn one_step_applies_the_earlier_ones_checks_it_and_restores() {
    let env = Fake::default();
    let (passed, events) = run_lab(
        &env,
        "traffic-shifting",
        Options {
            step: Some(3),
            keep: false,
        },
    )
    .await;
    assert!(passed, "{events:#?}");
    assert_eq!(
        *env.calls.lock().unwrap(),
        [
            "checkpoint",
            "apply bookinfo-gateway.yaml,destination-rule-all.yaml,virtual-service-all-v1.yaml",
            "apply virtual-service-reviews-50-v3.yaml",
            "apply virtual-service-reviews-v3.yaml",
            "restore found",
        ]
    );
    let steps: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Step { .. }))
        .collect();
    assert_eq!(steps.len(), 1, "only step 3 is reported");
    assert!(matches!(events.first(), Some(Event::Lab { steps: 3, .. })));
    assert!(matches!(
        &events[events.len() - 2],
        Event::Restored { what } if what == "back"
    ));
    assert_eq!(events.last(), Some(&Event::Done { passed: true }));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Progress {
            done: 30,
            total: 30,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_failing_check_reports_observed_expected_and_hint_and_still_restores() {
    // All red: step 1 (no stars) fails after its retries, step 2 (40..60) fails.
    let env = Fake::default();
    let (passed, events) = run_lab(&env, "traffic-shifting", Options::default()).await;
    assert!(!passed);
    let failed: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Check { passed: false, .. }))
        .collect();
    assert_eq!(failed.len(), 2, "{events:#?}");
    let Event::Check {
        step,
        observed,
        expected,
        hint,
        ..
    } = failed[1]
    else {
        unreachable!()
    };
    assert_eq!(*step, 2);
    assert!(
        observed.contains("100 of 100 pages with red stars (v3)"),
        "{observed}"
    );
    assert!(
        expected.contains("40..60 pages with red stars (v3)"),
        "{expected}"
    );
    assert!(hint.contains("weights"), "{hint}");
    assert_eq!(env.calls.lock().unwrap().last().unwrap(), "restore found");
    assert_eq!(events.last(), Some(&Event::Done { passed: false }));
}

#[tokio::test(start_paused = true)]
async fn checks_are_retried_until_configuration_arrives() {
    let env = Fake {
        red_after_first: true,
        ..Fake::default()
    };
    let (passed, events) = run_lab(
        &env,
        "traffic-shifting",
        Options {
            step: Some(3),
            keep: true,
        },
    )
    .await;
    assert!(passed, "{events:#?}");
    assert_eq!(*env.sets.lock().unwrap(), 2, "one failed attempt, one good");
    let calls = env.calls.lock().unwrap();
    assert!(
        !calls
            .iter()
            .any(|c| c == "checkpoint" || c.starts_with("restore")),
        "keep leaves restoring to the caller: {calls:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_that_does_not_exist_fails_at_once() {
    let env = Fake::default();
    let (passed, events) = run_lab(
        &env,
        "egress",
        Options {
            step: Some(9),
            keep: false,
        },
    )
    .await;
    assert!(!passed);
    assert!(
        matches!(&events[1], Event::Error { message } if message == "lab egress has steps 1 to 5, not 9")
    );
    assert!(env.calls.lock().unwrap().is_empty());
}
