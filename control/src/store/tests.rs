use super::*;
use crate::yaml;

/// A scratch directory removed on drop (no extra dependency for this).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "meshlab-store-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn resources(text: &str) -> Vec<Resource> {
    yaml::load("test.yaml", text)
        .unwrap_or_else(|d| panic!("{d:#?}"))
        .documents
        .into_iter()
        .map(|d| d.resource)
        .collect()
}

fn lines(outcomes: &[ApplyOutcome]) -> Vec<String> {
    outcomes.iter().map(ToString::to_string).collect()
}

const REVIEWS_V1: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
";

const REVIEWS_V2: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
";

const DETAILS_SVC: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: details
  labels: {app: details}
spec:
  ports:
  - port: 9080
    name: http
  selector: {app: details}
";

#[test]
fn a_new_store_has_the_system_namespaces() {
    let dir = TempDir::new("seed");
    let store = Store::open(&dir.0).unwrap();
    let names: Vec<String> = store
        .list(Kind::Namespace, None)
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
    assert_eq!(names, ["default", "istio-system"]);
    assert!(dir.0.join(STATE_FILE).exists());
}

#[test]
fn created_configured_unchanged() {
    let dir = TempDir::new("ccu");
    let store = Store::open(&dir.0).unwrap();
    let created = store.apply(resources(REVIEWS_V1), "default").unwrap();
    assert_eq!(
        lines(&created),
        ["virtualservice.networking.istio.io/reviews created"]
    );
    let first = store
        .get(Kind::VirtualService, "default", "reviews")
        .unwrap();
    let meta = first.metadata();
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(meta.generation, Some(1));
    let uid = meta.uid.clone().unwrap();
    assert_eq!(uid.len(), 36);
    assert_eq!(&uid[14..15], "4");
    let version: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    let unchanged = store.apply(resources(REVIEWS_V1), "default").unwrap();
    assert_eq!(
        lines(&unchanged),
        ["virtualservice.networking.istio.io/reviews unchanged"]
    );
    assert_eq!(
        store.snapshot().revision(),
        version,
        "unchanged writes nothing"
    );

    let configured = store.apply(resources(REVIEWS_V2), "default").unwrap();
    assert_eq!(
        lines(&configured),
        ["virtualservice.networking.istio.io/reviews configured"]
    );
    let second = store
        .get(Kind::VirtualService, "default", "reviews")
        .unwrap();
    let meta = second.metadata();
    assert_eq!(meta.uid.as_deref(), Some(uid.as_str()), "same incarnation");
    assert_eq!(meta.generation, Some(2));
    assert_eq!(meta.creation_timestamp, first.metadata().creation_timestamp);
    let version2: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(version2 > version);

    // A label change is "configured" but not a new generation.
    let labelled = REVIEWS_V2.replace(
        "  name: reviews\n",
        "  name: reviews\n  labels: {team: books}\n",
    );
    let outcome = store.apply(resources(&labelled), "default").unwrap();
    assert_eq!(outcome[0].action, ApplyAction::Configured);
    let third = store
        .get(Kind::VirtualService, "default", "reviews")
        .unwrap();
    assert_eq!(third.metadata().generation, Some(2));
}

#[test]
fn kubectl_lines_for_core_kinds() {
    let dir = TempDir::new("lines");
    let store = Store::open(&dir.0).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: default}}\n---\n{DETAILS_SVC}---\n{}",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: details-v1}\nspec:\n  selector: {matchLabels: {app: details}}\n  template:\n    metadata: {labels: {app: details}}\n    spec:\n      containers:\n      - {name: details, image: details}\n"
    );
    let outcomes = store.apply(resources(&text), "default").unwrap();
    assert_eq!(
        lines(&outcomes),
        [
            "namespace/default unchanged",
            "service/details created",
            "deployment.apps/details-v1 created",
        ]
    );
}

#[test]
fn one_bad_document_changes_nothing() {
    let dir = TempDir::new("atomic");
    let store = Store::open(&dir.0).unwrap();
    let before = store.snapshot().revision();
    let mut docs = resources(REVIEWS_V1);
    docs.extend(resources(DETAILS_SVC));
    // A resource the YAML door would have rejected, arriving over the API.
    let mut bad = resources(REVIEWS_V2).remove(0);
    if let Resource::VirtualService(vs) = &mut bad {
        vs.metadata.name = "ratings".into();
        vs.spec.http[0].route[0].weight = -5;
        let extra = vs.spec.http[0].route[0].clone();
        vs.spec.http[0].route.push(extra);
    }
    docs.push(bad);
    let err = store.apply(docs, "default").unwrap_err();
    let ApplyError::Invalid(diagnostics) = &err else {
        panic!("{err}")
    };
    assert!(diagnostics.iter().any(|d| d.message == "weight -5 < 0"));
    assert_eq!(
        err.to_string(),
        "the apply was rejected (2 errors): VirtualService ratings: spec.http[0].route[0].weight: weight -5 < 0"
    );
    assert_eq!(store.snapshot().revision(), before);
    assert!(
        store
            .get(Kind::VirtualService, "default", "reviews")
            .is_none()
    );
    assert!(store.get(Kind::Service, "default", "details").is_none());
    // Nothing on disk either.
    let reopened = Store::open(&dir.0).unwrap();
    assert_eq!(reopened.snapshot().revision(), before);
}

#[test]
fn namespaces_must_exist_or_come_along() {
    let dir = TempDir::new("ns");
    let store = Store::open(&dir.0).unwrap();
    let err = store.apply(resources(REVIEWS_V1), "foo").unwrap_err();
    assert_eq!(err.to_string(), "namespaces \"foo\" not found");
    assert!(err.hint().unwrap().contains("foo"));
    assert!(store.get(Kind::VirtualService, "foo", "reviews").is_none());

    let with_namespace = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: foo\n  labels: {{istio-injection: enabled}}\n---\n{REVIEWS_V1}"
    );
    // The Namespace may come after the objects that need it.
    let mut docs = resources(&with_namespace);
    docs.reverse();
    let outcomes = store.apply(docs, "foo").unwrap();
    assert_eq!(
        lines(&outcomes),
        [
            "virtualservice.networking.istio.io/reviews created",
            "namespace/foo created"
        ]
    );
    let namespace = store.get(Kind::Namespace, "", "foo").unwrap();
    assert_eq!(namespace.metadata().labels["istio-injection"], "enabled");
    assert_eq!(namespace.namespace(), None);
}

#[test]
fn delete_reports_kubectl_not_found() {
    let dir = TempDir::new("del");
    let store = Store::open(&dir.0).unwrap();
    let err = store
        .delete(Kind::VirtualService, "default", "reviews")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "virtualservices.networking.istio.io \"reviews\" not found"
    );
    let err = store.delete(Kind::Deployment, "default", "x").unwrap_err();
    assert_eq!(err.to_string(), "deployments.apps \"x\" not found");

    store.apply(resources(REVIEWS_V1), "default").unwrap();
    let deleted = store
        .delete(Kind::VirtualService, "default", "reviews")
        .unwrap();
    assert_eq!(
        deleted.to_string(),
        "virtualservice.networking.istio.io \"reviews\" deleted"
    );
    assert!(
        store
            .get(Kind::VirtualService, "default", "reviews")
            .is_none()
    );
}

#[test]
fn delete_of_an_apply_set_is_all_or_nothing() {
    let dir = TempDir::new("delall");
    let store = Store::open(&dir.0).unwrap();
    let mut docs = resources(REVIEWS_V1);
    docs.extend(resources(DETAILS_SVC));
    store.apply(docs, "default").unwrap();
    let keys = [
        ObjectKey::new(Kind::VirtualService, "default", "reviews"),
        ObjectKey::new(Kind::DestinationRule, "default", "reviews"),
        ObjectKey::new(Kind::Service, "default", "details"),
    ];
    let err = store.delete_all(&keys).unwrap_err();
    assert_eq!(
        err.to_string(),
        "destinationrules.networking.istio.io \"reviews\" not found"
    );
    assert!(
        store
            .get(Kind::VirtualService, "default", "reviews")
            .is_some()
    );
    let deleted = store
        .delete_all(&[keys[0].clone(), keys[2].clone()])
        .unwrap();
    assert_eq!(deleted.len(), 2);
    assert!(store.get(Kind::Service, "default", "details").is_none());
}

#[test]
fn deleting_a_namespace_deletes_its_objects_but_system_ones_stay() {
    let dir = TempDir::new("cascade");
    let store = Store::open(&dir.0).unwrap();
    let text =
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: foo}}\n---\n{REVIEWS_V1}");
    store.apply(resources(&text), "foo").unwrap();
    store.apply(resources(REVIEWS_V1), "default").unwrap();
    let deleted = store.delete(Kind::Namespace, "", "foo").unwrap();
    assert_eq!(deleted.to_string(), "namespace \"foo\" deleted");
    assert!(store.get(Kind::VirtualService, "foo", "reviews").is_none());
    assert!(
        store
            .get(Kind::VirtualService, "default", "reviews")
            .is_some()
    );
    let err = store.delete(Kind::Namespace, "", "default").unwrap_err();
    assert_eq!(
        err.to_string(),
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
}

#[test]
fn reopening_loses_nothing() {
    let dir = TempDir::new("reopen");
    let texts = [
        include_str!("../../tests/data/bookinfo.yaml"),
        include_str!("../../tests/data/destination-rule-all.yaml"),
        include_str!("../../tests/data/bookinfo-gateway.yaml"),
        include_str!("../../tests/data/traffic-tasks.yaml"),
        include_str!("../../tests/data/security-tasks.yaml"),
        include_str!("../../tests/data/clients.yaml"),
    ];
    let before = {
        let store = Store::open(&dir.0).unwrap();
        for text in texts {
            store.apply(resources(text), "default").unwrap();
        }
        store.snapshot()
    };
    let store = Store::open(&dir.0).unwrap();
    let after = store.snapshot();
    assert_eq!(after.revision(), before.revision());
    let a: Vec<_> = before
        .iter()
        .map(|(k, v)| (k.clone(), (**v).clone()))
        .collect();
    let b: Vec<_> = after
        .iter()
        .map(|(k, v)| (k.clone(), (**v).clone()))
        .collect();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "{} differs after reopening", x.0);
    }
    // And applying the same files again changes nothing.
    for text in texts {
        let outcomes = store.apply(resources(text), "default").unwrap();
        assert!(
            outcomes.iter().all(|o| o.action == ApplyAction::Unchanged),
            "{outcomes:?}"
        );
    }
    assert_eq!(store.snapshot().revision(), before.revision());
}

#[test]
fn a_corrupt_state_file_is_an_error_not_an_empty_store() {
    let dir = TempDir::new("corrupt");
    {
        let store = Store::open(&dir.0).unwrap();
        store.apply(resources(REVIEWS_V1), "default").unwrap();
    }
    let path = dir.0.join(STATE_FILE);
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() / 2]).unwrap();
    let err = Store::open(&dir.0).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("state file {} is corrupt: EOF", path.display())),
        "{message}"
    );
    assert!(message.contains("move it aside"), "{message}");
    // The file is left as it was for the learner to inspect.
    assert_eq!(fs::read(&path).unwrap().len(), full.len() / 2);

    let edited = String::from_utf8(full)
        .unwrap()
        .replace("\"subset\": \"v1\"", "\"subsett\": \"v1\"");
    fs::write(&path, edited).unwrap();
    let message = Store::open(&dir.0).unwrap_err().to_string();
    assert!(
        message.contains("spec.http[0].route[0].destination.subsett"),
        "{message}"
    );
}

#[tokio::test]
async fn subscribers_see_each_new_snapshot() {
    let dir = TempDir::new("watch");
    let store = Store::open(&dir.0).unwrap();
    let mut rx = store.subscribe();
    rx.borrow_and_update();
    store.apply(resources(REVIEWS_V1), "default").unwrap();
    rx.changed().await.unwrap();
    let snapshot = rx.borrow_and_update().clone();
    assert!(
        snapshot
            .get(Kind::VirtualService, "default", "reviews")
            .is_some()
    );
    assert_eq!(
        snapshot.list(Kind::VirtualService, Some("default")).count(),
        1
    );
    assert_eq!(
        snapshot.list(Kind::VirtualService, Some("other")).count(),
        0
    );
}
