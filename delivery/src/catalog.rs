//! The public event catalog: which of the log's events a subscriber may
//! receive, and what each one's payload holds. A payload is built from an
//! allowlist of the internal event's fields, so hashes, sealed data and
//! anything added to an internal event later never reach a subscriber
//! unless this catalog names it. Each type has a version and a JSON Schema
//! generated from the same list.

use serde_json::{json, Map, Value};

/// What a public payload's subject is, which says who receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An app's own stream (`app-<id>`): the app's endpoints.
    App,
    /// A key's stream (`api_key-<id>`): the endpoints of the key's app and
    /// mode.
    Key,
    /// An event naming its app in `app_id`: that app's endpoints.
    NamesApp,
    /// An organisation's notice: every endpoint of its apps.
    Org,
    /// A webhook endpoint's stream: the endpoint's app.
    Endpoint,
}

/// A field of a public payload.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name, the same in the internal event and the payload.
    pub name: &'static str,
    /// JSON Schema type: `string`, `integer`, `boolean`, `array`, `object`.
    pub kind: &'static str,
    /// A `format` for strings (`uuid`, `date-time`).
    pub format: Option<&'static str>,
    /// Always present.
    pub required: bool,
}

/// One deliverable type.
#[derive(Debug, Clone, Copy)]
pub struct PublicType {
    /// The type, as subscribers filter on it.
    pub name: &'static str,
    /// The payload's version.
    pub version: u32,
    /// What happened.
    pub description: &'static str,
    /// Who receives it.
    pub scope: Scope,
    /// The payload's fields besides the subject's ids.
    pub fields: &'static [Field],
}

const fn req(name: &'static str, kind: &'static str) -> Field {
    Field {
        name,
        kind,
        format: None,
        required: true,
    }
}

const fn opt(name: &'static str, kind: &'static str) -> Field {
    Field {
        name,
        kind,
        format: None,
        required: false,
    }
}

const fn id(name: &'static str) -> Field {
    Field {
        name,
        kind: "string",
        format: Some("uuid"),
        required: true,
    }
}

const fn time(name: &'static str, required: bool) -> Field {
    Field {
        name,
        kind: "string",
        format: Some("date-time"),
        required,
    }
}

/// Every type a subscriber can receive from the platform itself. Messages
/// published through the API add their own types.
pub const CATALOG: &[PublicType] = &[
    PublicType {
        name: "app.created",
        version: 1,
        description: "An app was created.",
        scope: Scope::App,
        fields: &[
            req("name", "string"),
            req("slug", "string"),
            req("description", "string"),
        ],
    },
    PublicType {
        name: "app.updated",
        version: 1,
        description: "An app's details changed; the fields that changed, with their new values.",
        scope: Scope::App,
        fields: &[
            opt("name", "string"),
            opt("slug", "string"),
            opt("description", "string"),
            opt("origins", "array"),
            opt("callback_urls", "array"),
        ],
    },
    PublicType {
        name: "app.suspended",
        version: 1,
        description: "Staff suspended the app: its keys stop verifying.",
        scope: Scope::App,
        fields: &[opt("reason", "string")],
    },
    PublicType {
        name: "app.reinstated",
        version: 1,
        description: "Staff lifted the app's suspension.",
        scope: Scope::App,
        fields: &[],
    },
    PublicType {
        name: "app.deleted",
        version: 1,
        description: "The app was deleted: every key stopped verifying.",
        scope: Scope::App,
        fields: &[opt("reason", "string")],
    },
    PublicType {
        name: "app_version.created",
        version: 1,
        description: "A version of the app was drafted.",
        scope: Scope::App,
        fields: &[id("version_id"), req("label", "string")],
    },
    PublicType {
        name: "app_version.published",
        version: 1,
        description: "A version of the app was published.",
        scope: Scope::App,
        fields: &[id("version_id")],
    },
    PublicType {
        name: "product_access.requested",
        version: 1,
        description: "The app asked for access to an API product.",
        scope: Scope::App,
        fields: &[id("request_id"), id("product_id"), req("mode", "string")],
    },
    PublicType {
        name: "product_access.approved",
        version: 1,
        description: "An access request was approved, with the scopes it grants.",
        scope: Scope::App,
        fields: &[
            id("request_id"),
            req("scopes", "array"),
            req("automatic", "boolean"),
        ],
    },
    PublicType {
        name: "product_access.rejected",
        version: 1,
        description: "An access request was rejected.",
        scope: Scope::App,
        fields: &[id("request_id"), req("reason", "string")],
    },
    PublicType {
        name: "api_key.issued",
        version: 1,
        description: "A key was issued (never its material).",
        scope: Scope::Key,
        fields: &[
            req("name", "string"),
            req("prefix", "string"),
            req("mode", "string"),
            req("kind", "string"),
            req("scopes", "array"),
            time("expires_at", false),
            Field {
                format: Some("uuid"),
                ..opt("rotated_from", "string")
            },
        ],
    },
    PublicType {
        name: "api_key.rotated",
        version: 1,
        description: "A key was rotated: the old one verifies until stops_at.",
        scope: Scope::Key,
        fields: &[id("replaced_by"), time("stops_at", true)],
    },
    PublicType {
        name: "api_key.revoked",
        version: 1,
        description: "A key was revoked.",
        scope: Scope::Key,
        fields: &[opt("reason", "string")],
    },
    PublicType {
        name: "api_key.leak_reported",
        version: 1,
        description: "A key was reported leaked (GitHub secret scanning); revoked says whether it was revoked.",
        scope: Scope::Key,
        fields: &[
            opt("url", "string"),
            opt("source", "string"),
            req("revoked", "boolean"),
        ],
    },
    PublicType {
        name: "api_key.rotation_required",
        version: 1,
        description: "Staff require the key's rotation: it stops at stops_at.",
        scope: Scope::Key,
        fields: &[time("stops_at", true)],
    },
    PublicType {
        name: "api_key.expiry_approaching",
        version: 1,
        description: "A key expires within a week.",
        scope: Scope::NamesApp,
        fields: &[id("key_id"), time("expires_at", true)],
    },
    PublicType {
        name: "usage.threshold_crossed",
        version: 1,
        description: "The organisation's usage crossed a threshold (percent) of its plan's quota.",
        scope: Scope::Org,
        fields: &[
            req("threshold", "integer"),
            req("used", "integer"),
            req("limit", "integer"),
            time("window_start", true),
            time("window_end", true),
        ],
    },
    PublicType {
        name: "webhook.endpoint_disabled",
        version: 1,
        description: "An endpoint was disabled: by hand, after a 410, or after failing for days.",
        scope: Scope::Endpoint,
        fields: &[req("reason", "string"), time("failing_since", false)],
    },
    PublicType {
        name: "webhook.message_exhausted",
        version: 1,
        description: "A message failed every attempt to an endpoint.",
        scope: Scope::Endpoint,
        fields: &[
            id("message_id"),
            req("message_type", "string"),
            req("attempts", "integer"),
            opt("last_status", "integer"),
        ],
    },
];

/// The catalog entry of `event_type`.
pub fn find(event_type: &str) -> Option<&'static PublicType> {
    CATALOG.iter().find(|t| t.name == event_type)
}

impl PublicType {
    /// The ids a payload of this scope starts with.
    fn subject_ids(&self) -> &'static [&'static str] {
        match self.scope {
            Scope::App | Scope::NamesApp => &["app_id", "org_id"],
            Scope::Key => &["key_id", "app_id", "org_id"],
            Scope::Org => &["org_id"],
            Scope::Endpoint => &["endpoint_id", "app_id", "org_id"],
        }
    }

    /// The payload's `data`: the subject's ids, then the listed fields the
    /// internal event holds.
    pub fn payload(&self, ids: &[(&'static str, uuid::Uuid)], internal: &Value) -> Value {
        let mut out = Map::new();
        for (name, id) in ids {
            out.insert((*name).into(), Value::String(id.to_string()));
        }
        for f in self.fields {
            if let Some(v) = internal.get(f.name).filter(|v| !v.is_null()) {
                out.insert(f.name.into(), v.clone());
            }
        }
        Value::Object(out)
    }

    /// The JSON Schema of the whole message body (`type`, `timestamp`,
    /// `data`).
    pub fn schema(&self) -> Value {
        let mut props = Map::new();
        let mut required: Vec<&str> = Vec::new();
        for name in self.subject_ids() {
            props.insert((*name).into(), json!({"type": "string", "format": "uuid"}));
            required.push(name);
        }
        for f in self.fields {
            let mut p = json!({ "type": f.kind });
            if let Some(fmt) = f.format {
                p["format"] = fmt.into();
            }
            if f.kind == "array" {
                p["items"] = json!({"type": "string"});
            }
            props.insert(f.name.into(), p);
            if f.required {
                required.push(f.name);
            }
        }
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"const": self.name},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": {
                    "type": "object",
                    "required": required,
                    "properties": props,
                    "additionalProperties": false,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_holds_only_the_listed_fields() {
        let t = find("api_key.issued").unwrap();
        let app = uuid::Uuid::now_v7();
        let internal = json!({
            "key_id": app, "app_id": app, "org_id": app, "name": "ci", "mode": "test",
            "kind": "secret", "scopes": [], "prefix": "gh_test_sk_ab", "hash": "deadbeef",
        });
        let p = t.payload(&[("app_id", app)], &internal);
        assert_eq!(p["name"], "ci");
        assert!(p.get("hash").is_none(), "a key's hash is never public");
        assert!(p.get("expires_at").is_none(), "absent fields stay absent");
    }

    #[test]
    fn every_type_is_a_family_verb_name_with_a_schema_naming_its_required_fields() {
        for t in CATALOG {
            assert!(domain::webhooks::is_type_name(t.name), "{}", t.name);
            let s = t.schema();
            let required = s["properties"]["data"]["required"].as_array().unwrap();
            for f in t.fields.iter().filter(|f| f.required) {
                assert!(
                    required.iter().any(|r| r == f.name),
                    "{}: {}",
                    t.name,
                    f.name
                );
            }
        }
        let mut names: Vec<_> = CATALOG.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len(), "a type is listed once");
    }
}
