//! API products: what staff offer (scopes) and how requests for them are
//! decided (auto, manual, or conditional on the credential mode).

use event_schemas::app::{ApprovalMode, Decision, ProductDefined, ProductEvent};
use uuid::Uuid;

use crate::validate::{Checks, Invalid};

/// A product, folded from its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Id.
    pub id: Uuid,
    /// Defined.
    pub exists: bool,
    /// Name.
    pub name: String,
    /// Scopes granted with access.
    pub scopes: Vec<String>,
    /// How requests are decided.
    pub approval: ApprovalMode,
}

impl Default for Product {
    fn default() -> Self {
        Product {
            id: Uuid::nil(),
            exists: false,
            name: String::new(),
            scopes: Vec::new(),
            approval: ApprovalMode::Manual,
        }
    }
}

impl Product {
    /// Applies one event: each carries the whole definition.
    pub fn apply(&mut self, event: &ProductEvent) {
        let (ProductEvent::Defined(d) | ProductEvent::Updated(d)) = event;
        *self = Product {
            id: d.product_id,
            exists: true,
            name: d.name.clone(),
            scopes: d.scopes.clone(),
            approval: d.approval,
        };
    }

    /// How a request for `mode` (`test` or `live`) is decided.
    pub fn decides(&self, mode: &str) -> Decision {
        match self.approval {
            ApprovalMode::Auto => Decision::Auto,
            ApprovalMode::Manual => Decision::Manual,
            ApprovalMode::Conditional { test, live } => {
                if mode == "live" {
                    live
                } else {
                    test
                }
            }
        }
    }
}

/// Checks a definition; trims the name and description.
fn checked(mut d: ProductDefined) -> Result<ProductDefined, Invalid> {
    d.name = d.name.trim().to_owned();
    d.description = d.description.trim().to_owned();
    let mut checks = Checks::default();
    checks.display_name("/name", &d.name, 100).check(
        d.description.chars().count() <= 2000,
        "/description",
        "must be at most 2000 characters",
    );
    checks.check(
        !d.scopes.is_empty() && d.scopes.len() <= 100,
        "/scopes",
        "must list 1 to 100 scopes",
    );
    for (i, s) in d.scopes.iter().enumerate() {
        checks.check(
            valid_scope(s),
            &format!("/scopes/{i}"),
            "scopes are 1 to 64 of a-z, 0-9, _ . : - starting with a letter",
        );
    }
    checks.finish()?;
    d.scopes.sort();
    d.scopes.dedup();
    Ok(d)
}

/// A scope name: `payroll.read`, `people:write`.
pub fn valid_scope(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c))
}

/// `DefineProduct` (staff).
pub fn define(d: ProductDefined) -> Result<Vec<ProductEvent>, Invalid> {
    Ok(vec![ProductEvent::Defined(checked(d)?)])
}

/// `UpdateProduct` (staff): the whole definition again. Apps already
/// approved keep the scopes they were granted.
pub fn update(product: &Product, d: ProductDefined) -> Result<Option<Vec<ProductEvent>>, Invalid> {
    if !product.exists {
        return Ok(None);
    }
    Ok(Some(vec![ProductEvent::Updated(checked(
        ProductDefined {
            product_id: product.id,
            ..d
        },
    )?)]))
}
