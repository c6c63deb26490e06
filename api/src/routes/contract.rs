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
    let secured = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && s.iter().any(|r| *r != Default::default()));
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
    if is_post {
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
