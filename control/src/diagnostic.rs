//! What meshlab tells a learner about a manifest: where (file, line, column), which
//! resource, which field, what is wrong and what to do next.
//!
//! Parsing (`yaml`), decoding (`resource`) and checking (`validate`) all speak this one
//! type, so the CLI prints every problem the same way, kubectl-style. Field paths are
//! structured ([`FieldPath`]) rather than strings so that `yaml` can map them back to
//! the line the learner wrote.

use std::fmt;

use serde::Serialize;

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifest is rejected; nothing is applied.
    Error,
    /// Istio accepts this, but it is probably not what the learner meant.
    Warning,
}

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A mapping key, e.g. `spec`.
    Field(String),
    /// A sequence index, e.g. the `0` in `http[0]`.
    Index(usize),
}

/// A path into a manifest, displayed the way Istio and kubectl print it:
/// `spec.http[0].route[0].destination.subset`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<PathSegment>);

// === impl FieldPath ===

impl FieldPath {
    /// The path of the whole document.
    #[must_use]
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    #[must_use]
    pub fn field(&self, name: &str) -> Self {
        let mut path = self.clone();
        path.0.push(PathSegment::Field(name.to_owned()));
        path
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(PathSegment::Index(index));
        path
    }

    /// The steps from the document root.
    #[must_use]
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// Whether this is the document root.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads back a path as it is displayed, `spec.http[0].route[1].destination`
    /// (keys that contain `.` or `[` are not told apart).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut path = Self::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut pieces = part.split('[');
            if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
                path = path.field(name);
            }
            for index in pieces {
                match index.trim_end_matches(']').parse() {
                    Ok(index) => path = path.index(index),
                    Err(_) => path = path.field(index),
                }
            }
        }
        path
    }

    /// `other` appended to this path (e.g. an item's path inside `kind: List`).
    #[must_use]
    pub fn join(&self, other: &FieldPath) -> Self {
        let mut path = self.clone();
        path.0.extend(other.0.iter().cloned());
        path
    }
}

impl From<Vec<PathSegment>> for FieldPath {
    fn from(segments: Vec<PathSegment>) -> Self {
        Self(segments)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Field(name) if i == 0 => f.write_str(name)?,
                PathSegment::Field(name) => write!(f, ".{name}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A place in a source file, 1-based like editors show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: u64,
    /// Column number, starting at 1.
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Which resource a diagnostic is about, as far as it is known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResourceId {
    /// The kind as written (`VirtualService`), if the document named one.
    pub kind: Option<String>,
    /// The namespace, if the document named one.
    pub namespace: Option<String>,
    /// The name, if the document named one.
    pub name: Option<String>,
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_deref().unwrap_or("resource"))?;
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => write!(f, " {ns}/{name}"),
            (None, Some(name)) => write!(f, " {name}"),
            _ => Ok(()),
        }
    }
}

/// One problem found in a manifest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error (rejects the apply) or warning.
    pub severity: Severity,
    /// The file the manifest came from (`-` for standard input), when known.
    pub file: Option<String>,
    /// Where in that file, when known.
    pub position: Option<Position>,
    /// The resource concerned, when known.
    pub resource: Option<ResourceId>,
    /// The offending field, when the problem is about one field.
    pub field: Option<FieldPath>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// What to do next, when there is something useful to say.
    pub hint: Option<String>,
}

// === impl Diagnostic ===

impl Diagnostic {
    /// An error with just a message; add context with the builder methods.
    #[must_use]
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: None,
            position: None,
            resource: None,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning with just a message.
    #[must_use]
    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    /// Sets the offending field.
    #[must_use]
    pub fn at(mut self, field: FieldPath) -> Self {
        self.field = Some(field);
        self
    }

    /// Sets the hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the resource.
    #[must_use]
    pub fn on(mut self, resource: ResourceId) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Whether this diagnostic rejects the manifest.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.position) {
            (Some(file), Some(pos)) => write!(f, "{file}:{pos}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(pos)) => write!(f, "line {pos}: ")?,
            (None, None) => {}
        }
        if let Some(resource) = &self.resource {
            write!(f, "{resource}: ")?;
        }
        if let Some(field) = self.field.as_ref().filter(|p| !p.is_root()) {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}
