//! What every operation of the OpenAPI document answers besides what its
//! handler declares: the problem responses the layers and extractors give
//! (a malformed path, query, header or body; no credentials; a body too
//! large or not JSON; an `Idempotency-Key` in use or reused; the database
//! unavailable), all as `application/problem+json`. Declared here once, so
//! a new route's document is complete the day it lands.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// The modifier.
pub struct ProblemResponses;

const PROBLEM_JSON: &str = "application/problem+json";

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (false, &mut item.get),
                (false, &mut item.delete),
                (true, &mut item.post),
                (false, &mut item.put),
                (false, &mut item.patch),
            ];
            for (is_post, op) in operations {
                if let Some(op) = op.as_mut() {
                    complete(op, path, is_post);
                }
            }
        }
    }
}

fn complete(op: &mut Operation, path: &str, is_post: bool) {
    // Problems are problem+json, whatever the handler's annotation said.
    for response in op.responses.responses.values_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let problem = response
            .content
            .get("application/json")
            .and_then(|c| c.schema.as_ref())
            .is_some_and(|s| matches!(s, RefOr::Ref(r) if r.ref_location.ends_with("/Problem")));
        if problem {
            if let Some(content) = response.content.shift_remove("application/json") {
                response.content.insert(PROBLEM_JSON.to_owned(), content);
            }
        }
    }
    // Credentials required: some requirement, and none of them empty (an
    // empty one makes credentials optional, as on `/readyz`).
    let secured = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|r| *r != Default::default()));
    let with_body = op.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description));
    };
    add(
        "400",
        "A malformed path parameter (`invalid-path`), query (`invalid-query`), header \
         (`invalid-min-position`, `invalid-idempotency-key`) or body (`malformed-body`)",
    );
    if secured {
        add("401", "No valid session token (`unauthenticated`)");
    }
    // The tenancy guard answers 404 to whoever is not a member of the
    // path's organisation or app, and every handler keyed by a path id
    // answers 404 to an id it does not know.
    if path.contains('{') {
        add(
            "404",
            "No such resource, or the caller is not a member of its organisation \
             (`not-found`)",
        );
    }
    if with_body {
        add(
            "413",
            "The body is over the server's limit (`payload-too-large`)",
        );
        add("415", "The body is not JSON (`unsupported-media-type`)");
        add(
            "422",
            "The body has the wrong shape (`invalid-body`, by JSON pointer) or invalid \
             fields (`invalid-input`), or the Idempotency-Key was used with another body \
             (`idempotency-key-reused`)",
        );
    }
    // Idempotency-Key is honoured on authenticated requests only.
    if is_post && secured {
        add(
            "409",
            "A request with this Idempotency-Key is still running (`idempotency-key-in-progress`)",
        );
        add(
            "410",
            "The first response to this Idempotency-Key held personal data since erased \
             (`response-erased`)",
        );
        add(
            "422",
            "The Idempotency-Key was used with another body (`idempotency-key-reused`)",
        );
    }
    add(
        "503",
        "The database is unavailable or a read model is behind Gatehouse-Min-Position \
         (`unavailable`, `read-model-behind`); retry after Retry-After",
    );
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use utoipa::OpenApi;

    /// A client generator names a function after each operationId: two
    /// operations sharing one lose one of them.
    #[test]
    fn every_operation_id_names_one_operation() {
        let doc = serde_json::to_value(super::super::ApiDoc::openapi()).unwrap();
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(id) = op["operationId"].as_str() {
                    seen.entry(id.to_owned())
                        .or_default()
                        .push(format!("{method} {path}"));
                }
            }
        }
        let shared: Vec<_> = seen.iter().filter(|(_, ops)| ops.len() > 1).collect();
        assert!(shared.is_empty(), "{shared:#?}");
        assert!(seen.len() > 100, "{}", seen.len());
    }

    /// The document names a schema after its Rust type: two types of one
    /// name in different modules would leave only one in the document,
    /// and the other operation documented with the wrong body. Read from
    /// the sources, since the document itself cannot show the loss.
    #[test]
    fn every_schema_name_is_one_type() {
        fn scan(dir: &std::path::Path, names: &mut BTreeMap<String, BTreeSet<String>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let file = entry.unwrap().path();
                if file.is_dir() {
                    scan(&file, names);
                    continue;
                }
                let text = std::fs::read_to_string(&file).unwrap();
                let mut derives_schema = false;
                for line in text.lines().map(str::trim) {
                    if line.starts_with("#[derive(") && line.contains("ToSchema") {
                        derives_schema = true;
                    } else if derives_schema
                        && (line.starts_with("pub struct ")
                            || line.starts_with("pub enum ")
                            || line.starts_with("struct ")
                            || line.starts_with("enum "))
                    {
                        let name = line
                            .split_whitespace()
                            .find(|w| !["pub", "struct", "enum", "pub(crate)"].contains(w))
                            .unwrap()
                            .trim_end_matches(['{', '(', ';'])
                            .split('<')
                            .next()
                            .unwrap()
                            .to_owned();
                        names
                            .entry(name)
                            .or_default()
                            .insert(file.display().to_string());
                        derives_schema = false;
                    } else if line.starts_with("#[schema(as") {
                        derives_schema = false;
                    }
                }
            }
        }
        let mut names = BTreeMap::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        scan(&src, &mut names);
        let shared: Vec<_> = names.iter().filter(|(_, files)| files.len() > 1).collect();
        assert!(shared.is_empty(), "{shared:#?}");
        assert!(names.len() > 100, "{}", names.len());
    }
}
