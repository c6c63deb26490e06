//! What the executor needs of an aggregate: how its events decode, how one
//! is applied, and roughly how much memory its folded state holds (for the
//! cache's byte budget). The domain's own types implement it here.

use domain::apps::{App, Installation, Link};
use domain::keys::Key;
use domain::oauth::{OAuthClient, SigningKeys};
use domain::orgs::{Org, PlatformTerms};
use domain::products::Product;
use event_schemas::app::{
    AppEvent, AppSlugEvent, InstallLinkEvent, InstallationEvent, ProductEvent,
};
use event_schemas::key::KeyEvent;
use event_schemas::oauth::{OAuthClientEvent, SigningKeyEvent};
use event_schemas::org::{OrgEvent, TermsEvent};
use event_schemas::{DomainEvent, RecordedEvent, SchemaError};
use uuid::Uuid;

/// An event the folded state cannot take (it refers to something the
/// stream never created): the log and the code disagree, loudly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unappliable(pub String);

/// A folded aggregate the executor can load, cache and append to.
pub trait Aggregate: Clone + Default + Send + Sync + 'static {
    /// Its event family.
    type Event: DomainEvent + Send + Sync;

    /// Decodes a recorded event of its stream (`None`: another family's).
    fn decode(e: &RecordedEvent) -> Result<Option<Self::Event>, SchemaError>;

    /// Applies one event.
    fn apply(&mut self, e: &Self::Event) -> Result<(), Unappliable>;

    /// Estimated bytes held, for the cache's budget; an overestimate only
    /// evicts sooner.
    fn weight(&self) -> usize;
}

const ENTRY: usize = 64;

impl Aggregate for Org {
    type Event = OrgEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<OrgEvent>, SchemaError> {
        OrgEvent::decode(e)
    }

    fn apply(&mut self, e: &OrgEvent) -> Result<(), Unappliable> {
        Org::apply(self, e).map_err(Unappliable)
    }

    fn weight(&self) -> usize {
        let teams: usize = self
            .teams
            .values()
            .map(|t| ENTRY + t.name.len() + t.members.len() * ENTRY)
            .sum();
        std::mem::size_of::<Org>()
            + self.members.len() * ENTRY
            + self.invitations.len() * 4 * ENTRY
            + teams
    }
}

impl Aggregate for PlatformTerms {
    type Event = TermsEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<TermsEvent>, SchemaError> {
        TermsEvent::decode(e)
    }

    fn apply(&mut self, e: &TermsEvent) -> Result<(), Unappliable> {
        PlatformTerms::apply(self, e);
        Ok(())
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<PlatformTerms>() + self.published.len() * ENTRY
    }
}

impl Aggregate for Key {
    type Event = KeyEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<KeyEvent>, SchemaError> {
        KeyEvent::decode(e)
    }

    fn apply(&mut self, e: &KeyEvent) -> Result<(), Unappliable> {
        Key::apply(self, e).map_err(Unappliable)
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<Key>()
            + self.name.len()
            + self.prefix.len()
            + self.scopes.iter().map(|s| s.len() + 24).sum::<usize>()
    }
}

impl Aggregate for OAuthClient {
    type Event = OAuthClientEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<OAuthClientEvent>, SchemaError> {
        OAuthClientEvent::decode(e)
    }

    fn apply(&mut self, e: &OAuthClientEvent) -> Result<(), Unappliable> {
        OAuthClient::apply(self, e).map_err(Unappliable)
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<OAuthClient>() + self.name.len() + 4 * ENTRY
    }
}

impl Aggregate for SigningKeys {
    type Event = SigningKeyEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<SigningKeyEvent>, SchemaError> {
        SigningKeyEvent::decode(e)
    }

    fn apply(&mut self, e: &SigningKeyEvent) -> Result<(), Unappliable> {
        SigningKeys::apply(self, e);
        Ok(())
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<SigningKeys>() + self.keys.len() * 2 * ENTRY
    }
}

impl Aggregate for App {
    type Event = AppEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<AppEvent>, SchemaError> {
        AppEvent::decode(e)
    }

    fn apply(&mut self, e: &AppEvent) -> Result<(), Unappliable> {
        App::apply(self, e).map_err(Unappliable)
    }

    fn weight(&self) -> usize {
        let strings = self.name.len()
            + self.slug.len()
            + self.description.len()
            + self
                .origins
                .iter()
                .chain(&self.callback_urls)
                .map(|s| s.len() + 24)
                .sum::<usize>()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + ENTRY)
                .sum::<usize>();
        let versions: usize = self
            .versions
            .values()
            .map(|v| ENTRY + v.label.len() + json_weight(&v.manifest))
            .sum();
        std::mem::size_of::<App>()
            + strings
            + versions
            + (self.members.len() + self.allowlist.len()) * ENTRY
            + self.links.len() * 2 * ENTRY
            + self.installs.len() * ENTRY
            + self.access.len() * 2 * ENTRY
    }
}

impl Aggregate for Product {
    type Event = ProductEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<ProductEvent>, SchemaError> {
        ProductEvent::decode(e)
    }

    fn apply(&mut self, e: &ProductEvent) -> Result<(), Unappliable> {
        Product::apply(self, e);
        Ok(())
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<Product>()
            + self.name.len()
            + self.scopes.iter().map(|s| s.len() + 24).sum::<usize>()
    }
}

impl Aggregate for Link {
    type Event = InstallLinkEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<InstallLinkEvent>, SchemaError> {
        InstallLinkEvent::decode(e)
    }

    fn apply(&mut self, e: &InstallLinkEvent) -> Result<(), Unappliable> {
        Link::apply(self, e).map_err(Unappliable)
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<Link>() + self.token_hash.len()
    }
}

impl Aggregate for Installation {
    type Event = InstallationEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<InstallationEvent>, SchemaError> {
        InstallationEvent::decode(e)
    }

    fn apply(&mut self, e: &InstallationEvent) -> Result<(), Unappliable> {
        Installation::apply(self, e).map_err(Unappliable)
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<Installation>()
    }
}

/// Who holds an app slug in an organisation (`app_slug-<org>-<slug>`):
/// only the latest claim or release matters, so the state stays one id
/// however often the slug changed hands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlugHolder(pub Option<Uuid>);

impl Aggregate for SlugHolder {
    type Event = AppSlugEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<AppSlugEvent>, SchemaError> {
        AppSlugEvent::decode(e)
    }

    fn apply(&mut self, e: &AppSlugEvent) -> Result<(), Unappliable> {
        self.0 = match e {
            AppSlugEvent::Claimed(c) => Some(c.app_id),
            AppSlugEvent::Released(_) => None,
        };
        Ok(())
    }

    fn weight(&self) -> usize {
        std::mem::size_of::<SlugHolder>()
    }
}

/// A rough size of a JSON value in memory.
fn json_weight(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    24 + match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(json_weight).sum(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() + 24 + json_weight(v)).sum(),
        _ => 0,
    }
}

impl Aggregate for domain::webhooks::Endpoint {
    type Event = event_schemas::webhook::WebhookEvent;

    fn decode(e: &RecordedEvent) -> Result<Option<Self::Event>, SchemaError> {
        event_schemas::webhook::WebhookEvent::decode(e)
    }

    fn apply(&mut self, e: &Self::Event) -> Result<(), Unappliable> {
        domain::webhooks::Endpoint::apply(self, e).map_err(Unappliable)
    }

    fn weight(&self) -> usize {
        let settings = self.settings.as_ref().map_or(0, |s| {
            s.url.len()
                + s.description.len()
                + s.event_types.iter().map(|t| ENTRY + t.len()).sum::<usize>()
        });
        std::mem::size_of::<Self>() + settings + 4 * ENTRY
    }
}
