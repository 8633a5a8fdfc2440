//! `meshlab lab list | describe | run | reset`: the guided labs from the terminal.
//!
//! The labs are embedded in this binary, so `list` and `describe` need no lab up.
//! `run` asks the control plane to run the lab (it holds the store, the translation
//! and Docker) and renders the events it streams: each step's title and summary,
//! what was applied, live progress, ✔/✘ with the observed numbers. `--json` prints
//! one machine-readable result instead, `--junit FILE` writes JUnit XML for CI.
//! (`lab.rs` is the lab *environment*: `up`, `down`, `status`.)

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use meshlab_control::api::{Lines, RunLab};
use meshlab_labs::catalog::{self, Description, Summary};
use meshlab_labs::junit;
use meshlab_labs::runner::Event;
use serde::Serialize;

use crate::client::Client;

/// `meshlab lab list`.
pub fn list() -> anyhow::Result<()> {
    let labs = catalog::all()?;
    let rows: Vec<Vec<String>> = labs
        .iter()
        .map(Summary::from)
        .map(|s| vec![s.name, s.steps.to_string(), s.title])
        .collect();
    let table = meshlab_control::output::Table {
        headers: ["NAME", "STEPS", "TITLE"].map(str::to_owned).to_vec(),
        rows,
    };
    println!("{table}");
    Ok(())
}

fn description(name: &str) -> anyhow::Result<Description> {
    let lab = catalog::find(name).with_context(|| {
        format!(
            "lab {name:?} not found (hint: the labs are {})",
            catalog::names().collect::<Vec<_>>().join(", ")
        )
    })??;
    Ok(Description::from(&lab))
}

/// `meshlab lab describe NAME`.
pub fn describe(name: &str) -> anyhow::Result<()> {
    let lab = description(name)?;
    println!("{}\n", lab.title);
    println!("{}\n", lab.summary);
    println!("What you will learn:");
    for item in &lab.learn {
        println!("  - {item}");
    }
    for step in &lab.steps {
        print_step(step);
    }
    println!("\nRun it: meshlab lab run {}", lab.name);
    Ok(())
}

fn print_step(step: &catalog::StepDescription) {
    println!("\nStep {}: {}", step.index, step.title);
    println!();
    for line in step.prose.trim_end().lines() {
        println!("  {line}");
    }
    let mut changes: Vec<String> = step
        .delete
        .iter()
        .map(|f| format!("delete -f {f}"))
        .collect();
    changes.extend(step.apply.iter().map(|f| format!("apply -f {}", f.file)));
    changes.extend(
        step.mesh_config
            .iter()
            .map(|(k, v)| format!("mesh-config set {k}={v}")),
    );
    if !changes.is_empty() {
        println!("\n  The step runs:");
        for change in changes {
            println!("    meshlab {change}");
        }
    }
    if !step.commands.is_empty() {
        println!("\n  Try:");
        for command in &step.commands {
            println!("    {command}");
        }
    }
    if !step.checks.is_empty() {
        println!("\n  Checks:");
        for check in &step.checks {
            println!("    - {}: {}", check.name, check.description);
        }
    }
}

/// How `meshlab lab run` reports.
#[derive(Debug)]
pub struct RunOptions {
    /// Only this step.
    pub step: Option<usize>,
    /// Pause before each step.
    pub interactive: bool,
    /// One JSON result on stdout instead of the live report.
    pub json: bool,
    /// Write JUnit XML here.
    pub junit: Option<PathBuf>,
}

/// `--json`: the result of one run.
#[derive(Debug, Serialize)]
struct JsonResult<'a> {
    lab: &'a str,
    passed: bool,
    checks: Vec<&'a Event>,
    errors: Vec<&'a str>,
    events: &'a [Event],
}

/// `meshlab lab run NAME …`: 0 when every check held, 1 otherwise.
pub async fn run(client: &Client, name: &str, options: &RunOptions) -> anyhow::Result<u8> {
    let lab = description(name)?;
    let mut events = Vec::new();
    let mut renderer = Renderer::new(!options.json);
    let passed = if options.interactive {
        let mut passed = true;
        let steps: Vec<usize> = match options.step {
            Some(step) => vec![step],
            None => (1..=lab.steps.len()).collect(),
        };
        for index in steps {
            let step = lab
                .steps
                .get(index.wrapping_sub(1))
                .with_context(|| format!("lab {name} has no step {index}"))?;
            print_step(step);
            if !pause(&format!(
                "\nPress Enter to run step {index}, or type q and Enter to stop: "
            ))? {
                break;
            }
            let request = RunLab {
                step: Some(index),
                keep: true,
            };
            passed &= stream(client, name, &request, &mut renderer, &mut events).await?;
            if !passed {
                break;
            }
        }
        let reset: Lines = client
            .post(&format!("/api/v1/labs/{name}/reset"), &())
            .await?;
        if !options.json {
            println!("\nThe environment is back as the lab found it.");
            for line in reset.lines {
                println!("  restored: {line}");
            }
        }
        passed
    } else {
        let request = RunLab {
            step: options.step,
            keep: false,
        };
        stream(client, name, &request, &mut renderer, &mut events).await?
    };
    if let Some(path) = &options.junit {
        std::fs::write(path, junit::render(&events))
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    if options.json {
        let result = JsonResult {
            lab: name,
            passed,
            checks: events
                .iter()
                .filter(|e| matches!(e, Event::Check { .. }))
                .collect(),
            errors: events
                .iter()
                .filter_map(|e| match e {
                    Event::Error { message } => Some(message.as_str()),
                    _ => None,
                })
                .collect(),
            events: &events,
        };
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(if passed { 0 } else { 1 })
}

/// Runs (part of) a lab on the control plane, rendering and keeping its events;
/// whether it passed.
async fn stream(
    client: &Client,
    name: &str,
    request: &RunLab,
    renderer: &mut Renderer,
    events: &mut Vec<Event>,
) -> anyhow::Result<bool> {
    let mut passed = None;
    client
        .post_lines(&format!("/api/v1/labs/{name}/run"), request, |line| {
            if line.is_empty() {
                return Ok(());
            }
            let event: Event = serde_json::from_str(line)
                .with_context(|| format!("the control plane sent an unexpected event: {line}"))?;
            renderer.render(&event)?;
            if let Event::Done { passed: p } = event {
                passed = Some(p);
            }
            events.push(event);
            Ok(())
        })
        .await?;
    passed.context("the control plane stopped before the lab ended (hint: `meshlab logs control`)")
}

/// Whether the learner wants to go on.
fn pause(prompt: &str) -> anyhow::Result<bool> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(!answer.trim().eq_ignore_ascii_case("q"))
}

/// The live report.
struct Renderer {
    enabled: bool,
    terminal: bool,
    progress_shown: bool,
    checks: usize,
    failed: usize,
}

impl Renderer {
    fn new(enabled: bool) -> Self {
        Renderer {
            enabled,
            terminal: std::io::stdout().is_terminal(),
            progress_shown: false,
            checks: 0,
            failed: 0,
        }
    }

    fn render(&mut self, event: &Event) -> anyhow::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        if self.progress_shown && !matches!(event, Event::Progress { .. }) {
            write!(out, "\r\x1b[2K")?;
            self.progress_shown = false;
        }
        match event {
            Event::Lab { title, steps, .. } => writeln!(out, "{title} ({steps} steps)")?,
            Event::Step {
                index,
                title,
                summary,
            } => writeln!(out, "\nStep {index}: {title}\n  {summary}")?,
            Event::Applied { what } => writeln!(out, "  applied: {what}")?,
            Event::Progress { check, done, total } => {
                if self.terminal {
                    write!(out, "\r\x1b[2K  … {check}: {done}/{total} requests")?;
                    self.progress_shown = true;
                }
            }
            Event::Check {
                name,
                passed,
                observed,
                expected,
                hint,
                ..
            } => {
                self.checks += 1;
                if *passed {
                    writeln!(out, "  ✔ {name}: {observed}")?;
                } else {
                    self.failed += 1;
                    writeln!(out, "  ✘ {name}")?;
                    writeln!(out, "      observed: {observed}")?;
                    writeln!(out, "      expected: {expected}")?;
                    writeln!(out, "      hint: {hint}")?;
                }
            }
            Event::Restored { what } => writeln!(out, "  restored: {what}")?,
            Event::Error { message } => writeln!(out, "  error: {message}")?,
            Event::Done { passed } => {
                if *passed {
                    writeln!(out, "\nPASSED: {} checks held", self.checks)?;
                } else {
                    writeln!(
                        out,
                        "\nFAILED: {} of {} checks failed",
                        self.failed, self.checks
                    )?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// `meshlab lab reset NAME`.
pub async fn reset(client: &Client, name: &str) -> anyhow::Result<()> {
    let lines: Lines = client
        .post(&format!("/api/v1/labs/{name}/reset"), &())
        .await?;
    if lines.lines.is_empty() {
        println!("nothing to reset");
    }
    for line in lines.lines {
        println!("{line}");
    }
    Ok(())
}

/// `meshlab run probe --spec JSON`: a request set from inside a container, outcomes
/// as JSON on stdout, `progress N` lines on stderr.
pub fn probe(spec: &str) -> anyhow::Result<u8> {
    let spec: meshlab_labs::probe::Spec =
        serde_json::from_str(spec).context("the probe's --spec is not a request set")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcomes = runtime.block_on(meshlab_labs::probe::run(&spec, |done| {
        eprintln!("{}{done}", meshlab_labs::probe::PROGRESS);
    }))?;
    println!("{}", serde_json::to_string(&outcomes)?);
    Ok(0)
}
