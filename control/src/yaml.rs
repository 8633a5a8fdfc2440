//! The one door YAML comes in by (and goes out of): the only module that calls the YAML
//! crate, `serde-saphyr` (see DESIGN.md for why that crate).
//!
//! A stream is read in two passes:
//!
//! 1. every document is parsed into a small tree ([`Node`]) that remembers the line and
//!    column of each key and value — this pass fails only on YAML syntax;
//! 2. each tree becomes JSON and is decoded into a typed [`Resource`]
//!    (`Resource::from_value`), which reports the *path* of a bad field; the tree maps
//!    that path back to a line and column.
//!
//! Doing it in two passes is what gives the learner `file:line:col`, the resource and
//! `spec.http[0].route[0].destination.subsett` in one message: serde-saphyr reports
//! locations but not paths, `serde_path_to_error` reports paths but not locations, and
//! the typed decoder must first read `kind` to know which schema applies. The tree also
//! serves the validator's diagnostics, which know paths only.
//!
//! Rules, as kubectl has them: documents are separated by `---`; empty documents are
//! skipped; `kind: List` expands into its `items`; JSON is accepted (it is YAML); a
//! `null` field means the same as an absent one. Every non-empty document yields either
//! a [`Document`] or a [`Diagnostic`] — none is dropped.

#[cfg(test)]
mod tests;

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};
use serde_saphyr::{DuplicateKeyPolicy, Spanned};

use crate::diagnostic::{Diagnostic, FieldPath, PathSegment, Position};
use crate::resource::{Resource, resource_id};
use crate::validate;

/// One decoded manifest and where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    /// The typed resource.
    pub resource: Resource,
    /// Its source, to locate diagnostics found later.
    pub source: Source,
}

/// Where a document came from, with the positions of all its fields.
#[derive(Clone, Debug)]
pub struct Source {
    file: String,
    prefix: FieldPath,
    node: Node,
}

// === impl Source ===

impl Source {
    /// The file name given to [`parse_stream`].
    #[must_use]
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Where the document (or `kind: List` item) starts.
    #[must_use]
    pub fn start(&self) -> Position {
        self.node.at
    }

    /// The position of a field, or of its closest existing parent (a missing field is
    /// reported where it should have been).
    #[must_use]
    pub fn locate(&self, path: &FieldPath) -> Position {
        self.node.locate(path.segments(), false)
    }

    /// Fills in file and position of a diagnostic about this document.
    #[must_use]
    pub fn attach(&self, mut diagnostic: Diagnostic) -> Diagnostic {
        diagnostic.file = Some(self.file.clone());
        let path = diagnostic.field.clone().unwrap_or_default();
        diagnostic.position = Some(self.locate(&path));
        if !self.prefix.is_root() {
            diagnostic.field = Some(self.prefix.join(&path));
        }
        diagnostic
    }
}

/// Parses a YAML (or JSON) stream of manifests: one result per resource, in order.
/// `file` names the input in diagnostics (`-` for standard input).
#[must_use]
pub fn parse_stream(file: &str, text: &str) -> Vec<Result<Document, Diagnostic>> {
    let options = serde_saphyr::options! {
        // `yes`/`on` stay strings (YAML 1.2), as for Kubernetes.
        strict_booleans: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    let nodes: Vec<Spanned<NodeKind>> =
        match serde_saphyr::from_multiple_with_options(text, options) {
            Ok(nodes) => nodes,
            Err(err) => return vec![Err(syntax_error(file, &err))],
        };
    let mut out = Vec::new();
    for spanned in nodes {
        let node = Node::from(spanned);
        if matches!(node.kind, NodeKind::Null) {
            continue;
        }
        let is_list = node
            .get("kind")
            .is_some_and(|k| matches!(&k.kind, NodeKind::Str(s) if s == "List"));
        match (is_list, node.get("items")) {
            (
                true,
                Some(Node {
                    kind: NodeKind::Seq(items),
                    ..
                }),
            ) => {
                for (i, item) in items.iter().enumerate() {
                    let prefix = FieldPath::root().field("items").index(i);
                    out.push(decode_document(file, prefix, item.clone()));
                }
            }
            _ => out.push(decode_document(file, FieldPath::root(), node)),
        }
    }
    out
}

/// What [`load`] returns when every document is valid.
#[derive(Debug)]
pub struct Loaded {
    /// The documents, in order.
    pub documents: Vec<Document>,
    /// Warnings that do not block an apply.
    pub warnings: Vec<Diagnostic>,
}

/// Parses and validates a stream: all documents, or every problem found (errors and
/// warnings, each with file, line, resource and field).
///
/// # Errors
///
/// All diagnostics, when at least one is an error.
pub fn load(file: &str, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let mut documents = Vec::new();
    let mut diagnostics = Vec::new();
    for result in parse_stream(file, text) {
        match result {
            Ok(document) => {
                diagnostics.extend(
                    validate::validate(&document.resource)
                        .into_iter()
                        .map(|d| document.source.attach(d)),
                );
                documents.push(document);
            }
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        Err(diagnostics)
    } else {
        Ok(Loaded {
            documents,
            warnings: diagnostics,
        })
    }
}

/// Renders one value as a YAML document (for `get -o yaml`).
///
/// # Errors
///
/// Only if the serializer fails, which plain JSON values do not make it do.
pub fn to_yaml(value: &Value) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}

// The `Ok` variant is larger than the error, so boxing the error would save nothing.
#[allow(clippy::result_large_err)]
fn decode_document(file: &str, prefix: FieldPath, node: Node) -> Result<Document, Diagnostic> {
    let value = node.to_json();
    let id = resource_id(&value);
    let source = Source {
        file: file.to_owned(),
        prefix,
        node,
    };
    match Resource::from_value(value) {
        Ok(resource) => Ok(Document { resource, source }),
        Err(err) => {
            // An unknown field is best shown at its key, even when its value is a scalar.
            let key_position = err
                .message
                .starts_with("unknown field")
                .then(|| source.node.locate(err.path.segments(), true));
            let mut diagnostic = Diagnostic::error(err.message).at(err.path).on(id);
            diagnostic.hint = err.hint.or_else(|| default_hint(&diagnostic.message));
            let mut diagnostic = source.attach(diagnostic);
            if key_position.is_some() {
                diagnostic.position = key_position;
            }
            Err(diagnostic)
        }
    }
}

/// A hint for serde's own messages, which name the problem but not the fix.
fn default_hint(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("check the spelling against the Istio/Kubernetes API reference; meshlab rejects fields it does not know rather than ignore them".into())
    } else if message.starts_with("unknown variant") {
        Some("enum values are case-sensitive and written in upper case, e.g. ISTIO_MUTUAL".into())
    } else {
        None
    }
}

fn syntax_error(file: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let mut diagnostic = Diagnostic::error(format!(
        "invalid YAML: {}",
        strip_location(&err.to_string())
    ));
    diagnostic.file = Some(file.to_owned());
    diagnostic.position = err.location().map(position);
    diagnostic
}

/// serde-saphyr appends " at line L column C" to messages; we print positions ourselves.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn position(location: serde_saphyr::Location) -> Position {
    Position {
        line: location.line(),
        column: location.column(),
    }
}

/// A YAML node with its position.
#[derive(Clone, Debug)]
struct Node {
    at: Position,
    kind: NodeKind,
}

#[derive(Clone, Debug)]
enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key: its text (integer keys such as `portLevelMtls: {8080: …}` become
/// their decimal text, as JSON requires) and its position.
#[derive(Clone, Debug)]
struct Key {
    text: String,
    at: Position,
}

// === impl Node ===

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The position of `path`: a scalar's value, a collection's key, or (with
    /// `at_key`) always the key.
    fn locate(&self, path: &[PathSegment], at_key: bool) -> Position {
        let Some((first, rest)) = path.split_first() else {
            return self.at;
        };
        match (first, &self.kind) {
            (PathSegment::Field(name), NodeKind::Map(entries)) => {
                match entries.iter().find(|(k, _)| &k.text == name) {
                    // A scalar is best shown where its value is; a collection (or an
                    // unknown key) where its key is.
                    Some((key, value)) if rest.is_empty() => match value.kind {
                        NodeKind::Seq(_) | NodeKind::Map(_) => key.at,
                        _ if at_key => key.at,
                        _ => value.at,
                    },
                    Some((_, value)) => value.locate(rest, at_key),
                    None => self.at,
                }
            }
            (PathSegment::Index(i), NodeKind::Seq(items)) => items
                .get(*i)
                .map_or(self.at, |item| item.locate(rest, at_key)),
            _ => self.at,
        }
    }

    /// The node as JSON. Null mapping entries are dropped: Kubernetes (Go) decoding
    /// treats `field: null` like an absent field.
    fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::UInt(u) => Value::from(*u),
            // Non-finite floats have no JSON form; keep their YAML spelling so that a
            // typed field reports a precise type error.
            NodeKind::Float(f) => {
                Number::from_f64(*f).map_or_else(|| Value::String(f.to_string()), Value::Number)
            }
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .filter(|(_, v)| !matches!(v.kind, NodeKind::Null))
                    .map(|(k, v)| (k.text.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

impl From<Spanned<NodeKind>> for Node {
    fn from(spanned: Spanned<NodeKind>) -> Self {
        Node {
            at: position(spanned.referenced),
            kind: spanned.value,
        }
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::UInt(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeKind, E> {
        i64::try_from(v)
            .map(NodeKind::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeKind, E> {
        u64::try_from(v)
            .map(NodeKind::UInt)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<NodeKind>>()? {
            items.push(Node::from(item));
        }
        Ok(NodeKind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value::<Spanned<NodeKind>>()?;
            entries.push((key, Node::from(value)));
        }
        Ok(NodeKind::Map(entries))
    }
}

/// Reads a mapping key as text, with its position.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        let spanned = Spanned::<NodeKind>::deserialize(deserializer)?;
        let text = match spanned.value {
            NodeKind::Str(s) => s,
            NodeKind::Int(i) => i.to_string(),
            NodeKind::UInt(u) => u.to_string(),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Float(f) => f.to_string(),
            NodeKind::Null => "null".to_owned(),
            NodeKind::Seq(_) | NodeKind::Map(_) => {
                return Err(de::Error::custom("mapping keys must be scalars"));
            }
        };
        Ok(Key {
            text,
            at: position(spanned.referenced),
        })
    }
}
