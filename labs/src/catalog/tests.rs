use std::collections::BTreeSet;
use std::path::Path;

use super::{Description, LABS, all, find, names};

#[test]
fn every_shipped_lab_parses() {
    let labs = all().unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        names().collect::<Vec<_>>(),
        [
            "request-routing",
            "fault-injection",
            "traffic-shifting",
            "egress",
            "mtls",
            "sidecar-scoping"
        ]
    );
    for lab in &labs {
        assert!(!lab.learn.is_empty(), "{}: what you will learn", lab.name);
        for step in &lab.steps {
            assert!(
                !step.prose.trim().is_empty(),
                "{}: {}",
                lab.name,
                step.title
            );
            assert!(
                !step.checks.is_empty(),
                "{}: {} checks nothing",
                lab.name,
                step.title
            );
        }
    }
}

#[test]
fn every_file_in_a_lab_folder_is_embedded_and_used() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for embedded in LABS {
        let on_disk: BTreeSet<String> = std::fs::read_dir(root.join(embedded.name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f != "lab.yaml")
            .collect();
        let compiled: BTreeSet<String> = embedded
            .files
            .iter()
            .map(|(f, _)| (*f).to_owned())
            .collect();
        assert_eq!(
            on_disk, compiled,
            "labs/{}: files vs catalog",
            embedded.name
        );
        let lab = find(embedded.name).unwrap().unwrap();
        let used: BTreeSet<String> = lab
            .steps
            .iter()
            .flat_map(|s| s.apply.iter().chain(&s.delete))
            .cloned()
            .collect();
        assert_eq!(
            used, compiled,
            "labs/{}: a file no step names",
            embedded.name
        );
    }
}

#[test]
fn a_missing_manifest_is_named_with_its_step() {
    let yaml = "title: t\nsummary: s\nlearn: [x]\nsteps:\n- title: one\n  summary: s\n  prose: p\n  apply: [nope.yaml]\n";
    let err = crate::format::parse("demo", yaml, Default::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "labs/demo/lab.yaml: step 1: names \"nope.yaml\", which is not in the lab's folder (hint: add it to labs/demo/ and to the catalog)"
    );
}

#[test]
fn an_unknown_field_is_refused_with_its_line() {
    let yaml = "title: t\nsummary: s\nlearn: [x]\nsteps:\n- title: one\n  summary: s\n  prose: p\n  aply: [x.yaml]\n";
    let err = crate::format::parse("demo", yaml, Default::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("labs/demo/lab.yaml: "), "{text}");
    assert!(text.contains("aply"), "{text}");
    assert!(text.contains("line 8") || text.contains("8:"), "{text}");
}

#[test]
fn an_expectation_says_exactly_one_thing() {
    let yaml = "title: t\nsummary: s\nlearn: [x]\nsteps:\n- title: one\n  summary: s\n  prose: p\n  checks:\n  - name: c\n    hint: h\n    requests: {from: ingress, url: /productpage}\n    expect:\n    - {status: 200, exit: 0}\n";
    let err = crate::format::parse("demo", yaml, Default::default()).unwrap_err();
    assert!(err.to_string().contains("exactly one of"), "{err}");
    let yaml = yaml
        .replace("{status: 200, exit: 0}", "{status: 200}")
        .replace("url: /productpage", "url: productpage");
    let err = crate::format::parse("demo", &yaml, Default::default()).unwrap_err();
    assert!(err.to_string().contains("take a path"), "{err}");
}

#[test]
fn the_description_carries_manifests_and_checks_in_words() {
    let lab = find("traffic-shifting").unwrap().unwrap();
    let description = Description::from(&lab);
    let half = &description.steps[1];
    assert_eq!(half.index, 2);
    assert_eq!(half.apply[0].file, "virtual-service-reviews-50-v3.yaml");
    assert!(half.apply[0].yaml.contains("weight: 50"));
    assert_eq!(
        half.checks[0].description,
        "100 requests from the ingress to /productpage, 4 at a time: all with status 200; 40..60 with red stars; 0 with black stars"
    );
    let json = serde_json::to_value(&description).unwrap();
    assert_eq!(json["steps"][0]["title"], "All traffic to v1");
}
