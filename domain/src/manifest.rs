//! App manifests, checked against the JSON Schema in
//! `domain/schemas/app-manifest.schema.json` (served at
//! `GET /v1/schemas/app-manifest`), with errors by JSON pointer.

use std::sync::LazyLock;

use serde_json::Value;

use crate::validate::FieldError;

/// The manifest schema, as served.
pub const SCHEMA: &str = include_str!("../schemas/app-manifest.schema.json");

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the manifest schema is JSON");
    jsonschema::validator_for(&schema).expect("the manifest schema is a valid JSON Schema")
});

/// Every way `manifest` breaks the schema, each at its JSON pointer under
/// `/manifest`; empty when valid.
pub fn validate(manifest: &Value) -> Vec<FieldError> {
    VALIDATOR
        .iter_errors(manifest)
        .map(|e| FieldError {
            pointer: format!("/manifest{}", e.instance_path()),
            detail: e.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_complete_manifest_is_valid() {
        let m = json!({
            "name": "Payroll sync",
            "scopes": ["payroll.read", "people:write"],
            "webhooks": {"categories": ["payroll.*"], "data_types": ["payslip"]},
            "redirect_urls": ["https://app.example.com/callback"]
        });
        assert_eq!(validate(&m), vec![]);
    }

    #[test]
    fn errors_name_each_bad_field_by_pointer() {
        let m = json!({
            "scopes": ["Bad Scope"],
            "redirect_urls": ["http://insecure.example.com"],
            "extra": 1
        });
        let pointers: Vec<String> = validate(&m).into_iter().map(|e| e.pointer).collect();
        assert!(
            pointers.contains(&"/manifest/scopes/0".to_owned()),
            "{pointers:?}"
        );
        assert!(
            pointers.contains(&"/manifest/redirect_urls/0".to_owned()),
            "{pointers:?}"
        );
        // Missing `name` and the unknown `extra` are errors of the object.
        assert!(pointers.contains(&"/manifest".to_owned()), "{pointers:?}");
    }
}
