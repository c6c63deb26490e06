//! What an event says to a person reading the audit trail, worked out from
//! the event alone and what earlier events said: its targets (the entities
//! it touches), and for an update the fields it changed, before and after.
//!
//! It is generic over event types on purpose: a new type appears in the
//! audit trail readable from its first event, with no code here. The rules
//! that keep it safe are names: a field whose name says hash, secret,
//! sealed, token, password, signature or payload never appears, nor
//! personal data (sealed in the log; opened only at read time). A URL
//! (a field named `url` or ending in `_url`, at any depth) shows only its
//! origin: webhook URLs often carry a token in their path or query.

use serde_json::{Map, Value};
use uuid::Uuid;

/// Words that keep a field out of `changes`: secrets, their hashes, sealed
/// data, and personal data.
const HIDDEN: &[&str] = &[
    "hash",
    "secret",
    "sealed",
    "token",
    "password",
    "signature",
    "payload",
    "email",
    "kek",
];

/// Whether a field of `event_type` may be shown in `changes`.
pub fn shown(event_type: &str, field: &str) -> bool {
    if HIDDEN.iter().any(|w| field.contains(w)) {
        return false;
    }
    // A user's name is personal data, sealed under their key.
    !(field == "name" && event_type.starts_with("user."))
        && field != "id"
        && !field.ends_with("_id")
        && field != "previous"
}

/// The entity type a stream category holds, when it holds one entity.
pub fn stream_kind(category: &str) -> Option<&'static str> {
    Some(match category {
        "org" => "org",
        "app" => "app",
        "api_key" | "usage" | "api_key_expiry" => "api_key",
        "user" => "user",
        "webhook" => "webhook_endpoint",
        "webhook_message" => "webhook_message",
        "oauth_client" => "oauth_client",
        "product" => "product",
        "install_link" => "install_link",
        "key_rotation" => "key_rotation",
        "session" => "session",
        "staff" => "user",
        _ => return None,
    })
}

/// The entity type an id field names (`key_id` → `api_key`).
pub fn field_kind(field: &str) -> Option<String> {
    let base = field.strip_suffix("_id")?;
    Some(
        match base {
            "key" => "api_key",
            "endpoint" => "webhook_endpoint",
            "message" => "webhook_message",
            "client" => "oauth_client",
            "version" => "app_version",
            "link" => "install_link",
            "job" => "key_rotation",
            "" => return None,
            other => other,
        }
        .to_owned(),
    )
}

/// The entity a stream holds: its type and id.
pub fn stream_entity(stream_id: &str) -> Option<(&'static str, Uuid)> {
    let (category, rest) = stream_id.split_once('-')?;
    let kind = stream_kind(category)?;
    Some((kind, rest.parse().ok()?))
}

/// The ids an event's payload names, as `(field, type, id)`, in field order.
pub fn named_ids(data: &Map<String, Value>) -> Vec<(&str, String, Uuid)> {
    data.iter()
        .filter_map(|(field, v)| {
            let id = v.as_str()?.parse::<Uuid>().ok()?;
            Some((field.as_str(), field_kind(field)?, id))
        })
        .collect()
}

/// What an event's fields describe, so that successive events about the
/// same thing compare: the stream, plus the ids it names other than the
/// stream's own entity, its organisation and its app (a member of an org
/// is `org-<id>/user_id=<id>`; a product's access for an app is
/// `app-<id>/product_id=<id>`).
pub fn subject_key(stream_id: &str, data: &Map<String, Value>) -> String {
    subject_key_of(stream_id, &named_ids(data))
}

/// [`subject_key`], from the ids ([`named_ids`]) already read.
pub fn subject_key_of(stream_id: &str, named: &[(&str, String, Uuid)]) -> String {
    let own = stream_entity(stream_id).map(|(_, id)| id);
    let mut key = stream_id.to_owned();
    for &(field, _, id) in named {
        if Some(id) == own || field == "org_id" || field == "app_id" {
            continue;
        }
        key.push('/');
        key.push_str(field);
        key.push('=');
        key.push_str(&id.to_string());
    }
    key
}

/// The shown fields of `data`, URLs cut to their origin.
pub fn attributes(event_type: &str, data: &Map<String, Value>) -> Map<String, Value> {
    data.iter()
        .filter(|(k, _)| shown(event_type, k))
        .map(|(k, v)| {
            let mut v = v.clone();
            redact_urls(k, &mut v);
            (k.clone(), v)
        })
        .collect()
}

/// Cuts every URL under `field` to its origin (`https://host:port/…`).
fn redact_urls(field: &str, v: &mut Value) {
    match v {
        Value::String(s) if field == "url" || field.ends_with("_url") => {
            *s = origin_of(s);
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact_urls(k, v);
            }
        }
        Value::Array(items) => {
            for v in items {
                redact_urls(field, v);
            }
        }
        _ => {}
    }
}

/// `scheme://host[:port]`, then `/…` if anything followed; no credentials.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = if end < rest.len() && &rest[end..] != "/" {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

/// The fields an update changed: `{field: {before, after}}` for every shown
/// field whose value differs from what the subject held, or `None` when
/// nothing shown changed.
pub fn changes(before: &Map<String, Value>, after: &Map<String, Value>) -> Option<Value> {
    let mut out = Map::new();
    for (k, v) in after {
        let old = before.get(k).cloned().unwrap_or(Value::Null);
        if &old != v {
            out.insert(k.clone(), serde_json::json!({ "before": old, "after": v }));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn urls_show_only_their_origin_at_any_depth() {
        let data = json!({
            "settings": {"url": "https://user:pw@hooks.example.com:8443/t/SECRET?k=SECRET",
                         "event_types": ["*"]},
            "url": "https://siem.example.com/",
            "callback_url": "http://x.example.com?token=SECRET",
        });
        let shown = attributes("webhook.endpoint_updated", data.as_object().unwrap());
        let text = Value::Object(shown.clone()).to_string();
        assert!(!text.contains("SECRET") && !text.contains("pw"), "{text}");
        assert_eq!(shown["settings"]["url"], "https://hooks.example.com:8443/…");
        assert_eq!(shown["settings"]["event_types"], json!(["*"]));
        assert_eq!(shown["url"], "https://siem.example.com");
        assert_eq!(shown["callback_url"], "http://x.example.com/…");
    }

    #[test]
    fn secrets_hashes_and_personal_data_are_never_shown() {
        for f in [
            "hash",
            "secret_hash",
            "secret",
            "token_hash",
            "password_hash",
            "signature",
            "email",
            "email_index",
            "payload",
        ] {
            assert!(!shown("api_key.issued", f), "{f}");
        }
        assert!(!shown("user.signed_up", "name"));
        assert!(shown("app.updated", "name"));
        assert!(!shown("app.updated", "app_id"));
    }

    #[test]
    fn an_update_shows_what_changed_before_and_after() {
        let before = map(json!({"name": "Old", "description": "same"}));
        let after = map(json!({"name": "New", "description": "same", "homepage": "https://x"}));
        assert_eq!(
            changes(&before, &after),
            Some(json!({
                "name": {"before": "Old", "after": "New"},
                "homepage": {"before": null, "after": "https://x"}
            }))
        );
        assert_eq!(changes(&after, &after), None);
    }

    #[test]
    fn a_member_of_an_org_is_its_own_subject() {
        let u = Uuid::from_u128(7);
        let o = Uuid::from_u128(9);
        let data = map(json!({"org_id": o.to_string(), "user_id": u.to_string(), "role": "admin"}));
        assert_eq!(
            subject_key(&format!("org-{o}"), &data),
            format!("org-{o}/user_id={u}")
        );
        let key = map(json!({"key_id": u.to_string(), "app_id": o.to_string()}));
        assert_eq!(
            subject_key(&format!("api_key-{u}"), &key),
            format!("api_key-{u}")
        );
    }
}
