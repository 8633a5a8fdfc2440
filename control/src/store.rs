//! The resource store: what has been applied, persisted in the lab's state volume and
//! published as immutable snapshots.
//!
//! ## Contract
//!
//! - **All or nothing.** [`Store::apply`] validates every resource first and checks
//!   that each namespaced resource's Namespace exists or is part of the same apply;
//!   any error leaves the store untouched. [`Store::delete_all`] is all-or-nothing too.
//! - **kubectl's outcomes.** A resource is `created`, `configured` (anything the user
//!   wrote changed) or `unchanged`. An apply replaces the whole object: fields left out
//!   of the manifest are gone, as with `kubectl apply` of manifests always managed by
//!   `kubectl apply`.
//! - **Server-set metadata.** `uid` (random, per incarnation), `resourceVersion` (one
//!   counter for the whole store, strictly increasing, persisted), `generation` (1 on
//!   create, +1 per spec change) and `creationTimestamp`.
//! - **A fresh store is a fresh cluster.** Namespaces `default` and `istio-system`
//!   (Istio's root namespace, where mesh-wide policies live) exist from the start and
//!   cannot be deleted. Deleting another Namespace deletes everything in it.
//!
//! ## Persistence
//!
//! The whole state is one JSON file, `state.json`, rewritten on every change by
//! writing a temporary file, `fsync`ing it, renaming it over the old one and `fsync`ing
//! the directory. One file because an apply of many documents must be atomic on disk
//! as well: a single rename gives that for free, where one file per resource would need
//! a journal. A lab holds at most a few hundred small objects, so rewriting it all is
//! cheap. A file that cannot be read or decoded is an error naming the file — never an
//! empty store.
//!
//! ## Concurrency
//!
//! Readers never lock: they read the current [`Snapshot`] from a
//! `tokio::sync::watch` channel, and reconcilers and translators subscribe to it. Writers
//! are serialised by one mutex, which is held while the new state is written to disk:
//! a successful apply means "durable", and two writers must not interleave their
//! read-modify-write. No lock that readers take is ever held across I/O — the snapshot
//! is swapped in only after the write succeeded. The methods block on disk I/O; async
//! callers should use `spawn_blocking`.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::watch;

use crate::diagnostic::Diagnostic;
use crate::resource::core::{Namespace, NamespaceSpec};
use crate::resource::{Kind, ObjectKey, ObjectMeta, Resource, Timestamp};
use crate::validate;

/// Namespaces every lab has and that cannot be deleted.
pub const SYSTEM_NAMESPACES: [&str; 2] = ["default", "istio-system"];

const STATE_FILE: &str = "state.json";
const STATE_FORMAT: u32 = 1;

/// An immutable view of every stored object at one revision.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    revision: u64,
    objects: BTreeMap<ObjectKey, Arc<Resource>>,
}

// === impl Snapshot ===

impl Snapshot {
    /// The last `resourceVersion` handed out; changes with every write.
    #[must_use]
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// This snapshot with `resources` written over it, as an apply would write
    /// them (namespaced objects without a namespace go to `default_namespace`); for
    /// analysing files against what is applied, without applying them.
    #[must_use]
    pub fn overlay(&self, resources: Vec<Resource>, default_namespace: &str) -> Snapshot {
        let mut next = self.clone();
        for mut resource in resources {
            if resource.kind().is_namespaced() {
                resource
                    .metadata_mut()
                    .namespace
                    .get_or_insert_with(|| default_namespace.to_owned());
            }
            let key = ObjectKey::of(&resource, default_namespace);
            next.objects.insert(key, Arc::new(resource));
        }
        next
    }

    /// One object. `namespace` is ignored for cluster-scoped kinds.
    #[must_use]
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Resource>> {
        self.objects.get(&ObjectKey::new(kind, namespace, name))
    }

    /// Objects of a kind, in one namespace or (with `None`) all, ordered by namespace
    /// and name.
    pub fn list<'a>(
        &'a self,
        kind: Kind,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Resource>> + 'a {
        self.objects
            .iter()
            .filter(move |(key, _)| {
                key.kind == kind
                    && (!kind.is_namespaced() || namespace.is_none_or(|ns| key.namespace == ns))
            })
            .map(|(_, resource)| resource)
    }

    /// Every object, ordered by kind, namespace and name.
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &Arc<Resource>)> {
        self.objects.iter()
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        self.get(Kind::Namespace, "", namespace).is_some()
    }
}

/// What an apply did to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyAction {
    /// The object did not exist.
    Created,
    /// Something the user wrote changed.
    Configured,
    /// Spec, labels and annotations are as before.
    Unchanged,
}

impl fmt::Display for ApplyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApplyAction::Created => "created",
            ApplyAction::Configured => "configured",
            ApplyAction::Unchanged => "unchanged",
        })
    }
}

/// The outcome for one applied object; displays as kubectl's line
/// (`virtualservice.networking.istio.io/reviews created`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Which object.
    pub key: ObjectKey,
    /// What happened to it.
    pub action: ApplyAction,
}

impl fmt::Display for ApplyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.action)
    }
}

/// One deleted object; displays as kubectl's line
/// (`virtualservice.networking.istio.io "reviews" deleted`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// Which object.
    pub key: ObjectKey,
}

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} deleted",
            self.key.kind.resource_name(),
            self.key.name
        )
    }
}

/// Why an apply changed nothing.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// At least one resource failed validation; all diagnostics are included.
    #[error("the apply was rejected ({}): {}", count(.0.len(), "error"), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Diagnostic>),
    /// A namespaced resource names a namespace that neither exists nor is applied
    /// along with it (kubectl's wording).
    #[error("namespaces {namespace:?} not found")]
    NamespaceNotFound {
        /// The missing namespace.
        namespace: String,
        /// The first object that needs it.
        key: ObjectKey,
    },
    /// The new state could not be written; the old state is still in force.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApplyError {
    /// What to do next, for the CLI.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::NamespaceNotFound { namespace, .. } => Some(format!(
                "create it first (meshlab apply a Namespace named {namespace:?}) or add it to the same apply"
            )),
            ApplyError::Invalid(_) | ApplyError::Store(_) => None,
        }
    }
}

/// Why a delete changed nothing.
#[derive(Debug, Error)]
pub enum DeleteError {
    /// No such object (kubectl's wording: `virtualservices.networking.istio.io "reviews" not found`).
    #[error("{} {:?} not found", .key.kind.plural_name(), .key.name)]
    NotFound {
        /// The missing object.
        key: ObjectKey,
    },
    /// `default` and `istio-system` cannot be deleted.
    #[error("namespaces {name:?} is forbidden: this namespace may not be deleted")]
    Forbidden {
        /// The namespace.
        name: String,
    },
    /// The new state could not be written; the old state is still in force.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Persistence failures.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The state directory or file could not be read.
    #[error("cannot read the state in {path}")]
    Read {
        /// File or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The state file exists but is not a valid state (truncated, edited, from a newer
    /// meshlab). Nothing is discarded: move it aside to start empty.
    #[error(
        "state file {path} is corrupt: {detail} (hint: move it aside to start with an empty store; meshlab will not discard it for you)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The new state could not be written.
    #[error("cannot write the state to {path}")]
    Write {
        /// File or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The on-disk form.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StateFile {
    format: u32,
    revision: u64,
    objects: Vec<Value>,
}

/// The store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    write_lock: Mutex<()>,
    snapshots: watch::Sender<Arc<Snapshot>>,
}

// === impl Store ===

impl Store {
    /// Opens the store in `dir` (created if missing), loading everything persisted
    /// there. A new store starts with the namespaces `default` and `istio-system`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the directory cannot be used or the state file is unreadable
    /// or corrupt.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STATE_FILE);
        let existing = match fs::read(&path) {
            Ok(bytes) => Some(load(&path, &bytes)?),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        let store = Store {
            dir: dir.to_owned(),
            write_lock: Mutex::new(()),
            snapshots: watch::Sender::new(Arc::new(existing.clone().unwrap_or_default())),
        };
        if existing.is_none() {
            store.seed()?;
        }
        Ok(store)
    }

    /// The current snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver that sees every new snapshot; the current one counts as seen.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.subscribe()
    }

    /// One object.
    #[must_use]
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Resource>> {
        self.snapshot().get(kind, namespace, name).cloned()
    }

    /// Objects of a kind in one namespace, or in all with `None`.
    #[must_use]
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> Vec<Arc<Resource>> {
        self.snapshot().list(kind, namespace).cloned().collect()
    }

    /// Applies resources, all or nothing. Resources without a namespace go to
    /// `default_namespace`. Returns one outcome per resource, in order.
    ///
    /// # Errors
    ///
    /// [`ApplyError`]; the store is unchanged.
    pub fn apply(
        &self,
        resources: Vec<Resource>,
        default_namespace: &str,
    ) -> Result<Vec<ApplyOutcome>, ApplyError> {
        let errors: Vec<Diagnostic> = resources
            .iter()
            .flat_map(validate::validate)
            .filter(Diagnostic::is_error)
            .collect();
        if !errors.is_empty() {
            return Err(ApplyError::Invalid(errors));
        }
        let applied_namespaces: BTreeSet<String> = resources
            .iter()
            .filter(|r| r.kind() == Kind::Namespace)
            .map(|r| r.name().to_owned())
            .collect();

        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let base = self.snapshot();
        let mut next = (*base).clone();
        let now = Timestamp::now();
        let mut outcomes = Vec::with_capacity(resources.len());
        for mut resource in resources {
            let kind = resource.kind();
            let meta = resource.metadata_mut();
            meta.clear_server_fields();
            if kind.is_namespaced() {
                let namespace = meta
                    .namespace
                    .get_or_insert_with(|| default_namespace.to_owned());
                if !applied_namespaces.contains(namespace.as_str())
                    && !next.namespace_exists(namespace)
                {
                    return Err(ApplyError::NamespaceNotFound {
                        namespace: namespace.clone(),
                        key: ObjectKey::of(&resource, default_namespace),
                    });
                }
            } else {
                meta.namespace = None;
            }
            let key = ObjectKey::of(&resource, default_namespace);
            let action = match next.objects.get(&key) {
                None => {
                    next.revision += 1;
                    stamp(resource.metadata_mut(), new_uid(), now, 1, next.revision);
                    ApplyAction::Created
                }
                Some(old) => {
                    let mut old_as_written = (**old).clone();
                    old_as_written.metadata_mut().clear_server_fields();
                    if old_as_written == resource {
                        outcomes.push(ApplyOutcome {
                            key,
                            action: ApplyAction::Unchanged,
                        });
                        continue;
                    }
                    let old_meta = old.metadata();
                    let generation =
                        old_meta.generation.unwrap_or(1) + i64::from(!old.same_spec(&resource));
                    next.revision += 1;
                    stamp(
                        resource.metadata_mut(),
                        old_meta.uid.clone().unwrap_or_else(new_uid),
                        old_meta.creation_timestamp.unwrap_or(now),
                        generation,
                        next.revision,
                    );
                    ApplyAction::Configured
                }
            };
            next.objects.insert(key.clone(), Arc::new(resource));
            outcomes.push(ApplyOutcome { key, action });
        }
        if next.revision != base.revision {
            self.commit(next)?;
        }
        Ok(outcomes)
    }

    /// Deletes one object.
    ///
    /// # Errors
    ///
    /// [`DeleteError::NotFound`] (kubectl's message), [`DeleteError::Forbidden`] for
    /// system namespaces, or a persistence error; the store is unchanged.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<Deleted, DeleteError> {
        let mut deleted = self.delete_all(&[ObjectKey::new(kind, namespace, name)])?;
        Ok(deleted.remove(0))
    }

    /// Deletes several objects (`meshlab delete -f`), all or nothing. Deleting a
    /// Namespace deletes everything in it. A key listed twice is deleted once.
    ///
    /// # Errors
    ///
    /// As [`Store::delete`], for the first key that fails; nothing is deleted.
    pub fn delete_all(&self, keys: &[ObjectKey]) -> Result<Vec<Deleted>, DeleteError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let base = self.snapshot();
        let mut next = (*base).clone();
        let mut deleted = Vec::new();
        let mut seen = BTreeSet::new();
        for key in keys {
            if !seen.insert(key.clone()) {
                continue;
            }
            if key.kind == Kind::Namespace && SYSTEM_NAMESPACES.contains(&key.name.as_str()) {
                return Err(DeleteError::Forbidden {
                    name: key.name.clone(),
                });
            }
            if next.objects.remove(key).is_none() {
                // Already gone with a namespace deleted earlier in this call?
                let cascaded = key.kind.is_namespaced()
                    && keys
                        .iter()
                        .any(|k| k.kind == Kind::Namespace && k.name == key.namespace)
                    && base.objects.contains_key(key);
                if cascaded {
                    deleted.push(Deleted { key: key.clone() });
                    continue;
                }
                return Err(DeleteError::NotFound { key: key.clone() });
            }
            if key.kind == Kind::Namespace {
                next.objects
                    .retain(|k, _| !(k.kind.is_namespaced() && k.namespace == key.name));
            }
            deleted.push(Deleted { key: key.clone() });
        }
        if !deleted.is_empty() {
            next.revision += 1;
            self.commit(next)?;
        }
        Ok(deleted)
    }

    /// Creates the namespaces of a fresh cluster.
    fn seed(&self) -> Result<(), StoreError> {
        let namespaces = SYSTEM_NAMESPACES
            .iter()
            .map(|name| {
                Resource::Namespace(Namespace {
                    api_version: Kind::Namespace.api_version(),
                    kind: Kind::Namespace.to_string(),
                    metadata: ObjectMeta {
                        name: (*name).to_owned(),
                        ..ObjectMeta::default()
                    },
                    spec: NamespaceSpec::default(),
                })
            })
            .collect();
        match self.apply(namespaces, "default") {
            Ok(_) => Ok(()),
            Err(ApplyError::Store(err)) => Err(err),
            // Two well-formed namespaces cannot fail validation or need a namespace.
            Err(other) => Err(StoreError::Corrupt {
                path: self.dir.join(STATE_FILE),
                detail: other.to_string(),
            }),
        }
    }

    /// Persists `next`, then publishes it. Called with the write lock held.
    fn commit(&self, next: Snapshot) -> Result<(), StoreError> {
        let state = StateFile {
            format: STATE_FORMAT,
            revision: next.revision,
            objects: next.objects.values().map(|r| r.to_value()).collect(),
        };
        // Serializing plain JSON values cannot fail.
        let bytes = serde_json::to_vec_pretty(&state).unwrap_or_default();
        write_atomically(&self.dir, STATE_FILE, &bytes)?;
        self.snapshots.send_replace(Arc::new(next));
        Ok(())
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn stamp(meta: &mut ObjectMeta, uid: String, created: Timestamp, generation: i64, revision: u64) {
    meta.uid = Some(uid);
    meta.creation_timestamp = Some(created);
    meta.generation = Some(generation);
    meta.resource_version = Some(revision.to_string());
}

/// A random RFC 4122 version 4 UUID, as Kubernetes assigns.
fn new_uid() -> String {
    const VERSION_MASK: u128 = 0xf << 76;
    const VERSION_4: u128 = 0x4 << 76;
    const VARIANT_MASK: u128 = 0xc << 60;
    const VARIANT_RFC4122: u128 = 0x8 << 60;
    let random = fastrand::u128(..);
    let bits = (random & !VERSION_MASK & !VARIANT_MASK) | VERSION_4 | VARIANT_RFC4122;
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Decodes a state file; any problem is [`StoreError::Corrupt`].
fn load(path: &Path, bytes: &[u8]) -> Result<Snapshot, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let state: StateFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.format != STATE_FORMAT {
        return Err(corrupt(format!(
            "format {} is not supported (expected {STATE_FORMAT})",
            state.format
        )));
    }
    let mut snapshot = Snapshot {
        revision: state.revision,
        objects: BTreeMap::new(),
    };
    for (i, value) in state.objects.into_iter().enumerate() {
        let resource = Resource::from_value(value).map_err(|e| {
            let at = if e.path.is_root() {
                String::new()
            } else {
                format!(".{}", e.path)
            };
            corrupt(format!("objects[{i}]{at}: {e}"))
        })?;
        let version: Option<u64> = resource
            .metadata()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok());
        if version.is_none_or(|v| v > state.revision) {
            return Err(corrupt(format!(
                "objects[{i}] ({}) has a resourceVersion beyond the store's revision",
                ObjectKey::of(&resource, "")
            )));
        }
        let key = ObjectKey::of(&resource, "");
        if snapshot
            .objects
            .insert(key.clone(), Arc::new(resource))
            .is_some()
        {
            return Err(corrupt(format!("objects[{i}] ({key}) appears twice")));
        }
    }
    Ok(snapshot)
}

/// Writes `name` in `dir` so that a crash leaves either the old or the new content:
/// temporary file, fsync, rename, fsync of the directory.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp"));
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Write { path, source }
    };
    let mut file = File::create(&temp).map_err(write_err(&temp))?;
    file.write_all(bytes).map_err(write_err(&temp))?;
    file.sync_all().map_err(write_err(&temp))?;
    drop(file);
    fs::rename(&temp, &target).map_err(write_err(&target))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err(dir))?;
    Ok(())
}
