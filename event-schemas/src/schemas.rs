//! The JSON Schema of every event type's current version, generated from
//! the payload types (schemars), and the check that keeps the committed
//! files under `event-schemas/schemas/` honest: every type's current
//! version has its file and the file is what the code generates; a
//! published version (a file) never changes incompatibly (a field removed,
//! a type changed, a required field added) under the same number; and an
//! older version's file stays only while the code can upcast it.
//!
//! `gatehouse-replay schemas check` runs [`check`]; `schemas write`
//! runs [`write`], which refuses to overwrite a published version with an
//! incompatible one.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// One event type's current schema.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeSchema {
    /// `family.verb_past`.
    pub event_type: &'static str,
    /// The version this code writes.
    pub version: u32,
    /// Whether older versions are upcast to it.
    pub upcasts: bool,
    /// The JSON Schema of the payload.
    pub schema: Value,
}

impl TypeSchema {
    /// The schema of payload `T`.
    pub fn of<T: schemars::JsonSchema>(
        event_type: &'static str,
        version: u32,
        upcasts: bool,
    ) -> Self {
        let schema =
            serde_json::to_value(schemars::schema_for!(T)).expect("a JSON Schema serialises");
        TypeSchema {
            event_type,
            version,
            upcasts,
            schema,
        }
    }

    /// Its file name, `<type>.v<version>.json`.
    pub fn file_name(&self) -> String {
        file_name(self.event_type, self.version)
    }

    /// Its file's contents.
    pub fn text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.schema).expect("a schema serialises");
        text.push('\n');
        text
    }
}

fn file_name(event_type: &str, version: u32) -> String {
    format!("{event_type}.v{version}.json")
}

/// Every type of this build.
pub fn all() -> Vec<TypeSchema> {
    use crate::*;
    let mut all = Vec::new();
    all.extend(app::AppEvent::schemas());
    all.extend(app::AppSlugEvent::schemas());
    all.extend(app::ProductEvent::schemas());
    all.extend(app::InstallLinkEvent::schemas());
    all.extend(app::InstallationEvent::schemas());
    all.extend(audit::AuditEvent::schemas());
    all.extend(key::KeyEvent::schemas());
    all.extend(key::KeyHashEvent::schemas());
    all.extend(key::UsageEvent::schemas());
    all.extend(key::KeyRotationEvent::schemas());
    all.extend(key::NoticeEvent::schemas());
    all.extend(oauth::OAuthClientEvent::schemas());
    all.extend(oauth::SigningKeyEvent::schemas());
    all.extend(org::TermsEvent::schemas());
    all.extend(org::OrgEvent::schemas());
    all.extend(user::AccountEvent::schemas());
    all.extend(webhook::WebhookEvent::schemas());
    all.extend(webhook::MessageEvent::schemas());
    all.extend(webhook::RetentionEvent::schemas());
    all.sort_by(|a, b| a.event_type.cmp(b.event_type));
    all
}

/// What the check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A type's current version has no file.
    Missing {
        /// The file.
        file: String,
    },
    /// The file differs from the code in ways old events still decode
    /// (a new optional field, a description): regenerate it.
    OutOfDate {
        /// The file.
        file: String,
    },
    /// The code changed a published version incompatibly: give the type a
    /// new version and an upcaster.
    Incompatible {
        /// The file.
        file: String,
        /// Each incompatibility.
        changes: Vec<String>,
    },
    /// An older version is published but the code cannot upcast it.
    NoUpcaster {
        /// The file.
        file: String,
    },
    /// A file for a type or version this code does not know.
    Unknown {
        /// The file.
        file: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Missing { file } => {
                write!(f, "{file}: missing (run `gatehouse-replay schemas write`)")
            }
            Finding::OutOfDate { file } => write!(
                f,
                "{file}: differs from the code, compatibly (run `gatehouse-replay schemas write`)"
            ),
            Finding::Incompatible { file, changes } => write!(
                f,
                "{file}: changed incompatibly without a new version ({}); \
                 give the type a new schema version and an upcaster",
                changes.join("; ")
            ),
            Finding::NoUpcaster { file } => write!(
                f,
                "{file}: an older version is published but the code has no upcaster for it"
            ),
            Finding::Unknown { file } => write!(f, "{file}: no such type or version in the code"),
        }
    }
}

/// The properties of an object schema.
fn properties(schema: &Value) -> serde_json::Map<String, Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What a field's schema says about its shape, without its description.
fn shape(field: &Value) -> Value {
    let mut v = field.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("description");
        m.remove("default");
    }
    v
}

/// The incompatibilities of `new` with what was published as `old`: old
/// events must still decode under `new`.
pub fn incompatibilities(old: &Value, new: &Value) -> Vec<String> {
    let (old_p, new_p) = (properties(old), properties(new));
    let mut out = Vec::new();
    for (name, field) in &old_p {
        match new_p.get(name) {
            None => out.push(format!("field `{name}` removed")),
            Some(n) if shape(n) != shape(field) => out.push(format!("field `{name}` changed type")),
            _ => {}
        }
    }
    let old_required = required(old);
    for name in required(new).difference(&old_required) {
        out.push(format!("required field `{name}` added"));
    }
    if old.get("$defs").map(shape) != new.get("$defs").map(shape) {
        let (od, nd) = (old.get("$defs"), new.get("$defs"));
        if let (Some(Value::Object(od)), Some(Value::Object(nd))) = (od, nd) {
            for (name, def) in od {
                match nd.get(name) {
                    None => out.push(format!("definition `{name}` removed")),
                    Some(n) => out.extend(
                        incompatibilities(def, n)
                            .into_iter()
                            .map(|c| format!("in `{name}`: {c}")),
                    ),
                }
            }
        } else if od.is_some() {
            out.push("definitions removed".into());
        }
    }
    out
}

/// Checks the files in `dir` against `code` (normally [`all`]).
pub fn check(code: &[TypeSchema], dir: &Path) -> std::io::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            files.insert(name);
        }
    }
    for t in code {
        let file = t.file_name();
        match std::fs::read_to_string(dir.join(&file)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                findings.push(Finding::Missing { file: file.clone() })
            }
            Err(e) => return Err(e),
            Ok(text) if text == t.text() => {}
            Ok(text) => {
                let old: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let changes = incompatibilities(&old, &t.schema);
                findings.push(if changes.is_empty() {
                    Finding::OutOfDate { file: file.clone() }
                } else {
                    Finding::Incompatible {
                        file: file.clone(),
                        changes,
                    }
                });
            }
        }
        files.remove(&file);
    }
    for file in files {
        let parsed = file
            .strip_suffix(".json")
            .and_then(|f| f.rsplit_once(".v"))
            .and_then(|(t, v)| Some((t.to_owned(), v.parse::<u32>().ok()?)));
        let current = parsed
            .as_ref()
            .and_then(|(t, _)| code.iter().find(|c| c.event_type == t));
        findings.push(match (parsed, current) {
            (Some((_, v)), Some(c)) if v < c.version && c.upcasts => continue,
            (Some((_, v)), Some(c)) if v < c.version => Finding::NoUpcaster { file },
            _ => Finding::Unknown { file },
        });
    }
    Ok(findings)
}

/// Writes every current schema into `dir`, except over a published file
/// it would change incompatibly (those are returned, unwritten).
pub fn write(code: &[TypeSchema], dir: &Path) -> std::io::Result<(Vec<String>, Vec<Finding>)> {
    std::fs::create_dir_all(dir)?;
    let (mut written, mut refused) = (Vec::new(), Vec::new());
    for t in code {
        let file = t.file_name();
        let path = dir.join(&file);
        if let Ok(text) = std::fs::read_to_string(&path) {
            if text == t.text() {
                continue;
            }
            let old: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let changes = incompatibilities(&old, &t.schema);
            if !changes.is_empty() {
                refused.push(Finding::Incompatible { file, changes });
                continue;
            }
        }
        std::fs::write(&path, t.text())?;
        written.push(file);
    }
    Ok((written, refused))
}

/// The committed schema directory of this crate.
pub fn committed_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}
