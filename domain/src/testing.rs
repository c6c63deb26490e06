//! A given/when/then harness for the domain's unit tests (test builds
//! only): state is built from events alone (`given`), a decision is made
//! (`when`), and the test asserts the exact events decided (`then`) or the
//! exact refusal (`then_err`). Failures point at the test's line.

use std::fmt::Debug;

use event_schemas::app::{AppEvent, InstallLinkEvent, InstallationEvent};
use event_schemas::org::OrgEvent;

use crate::apps::{App, Installation, Link};
use crate::keys::Key;
use crate::orgs::Org;
use event_schemas::key::KeyEvent;

/// A folded aggregate the harness can build from events.
pub trait Evolve: Default {
    /// Its event family.
    type Event;
    /// Applies one event; an event the state cannot take is an error.
    fn evolve(&mut self, event: &Self::Event) -> Result<(), String>;
}

impl Evolve for App {
    type Event = AppEvent;
    fn evolve(&mut self, event: &AppEvent) -> Result<(), String> {
        self.apply(event)
    }
}

impl Evolve for Org {
    type Event = OrgEvent;
    fn evolve(&mut self, event: &OrgEvent) -> Result<(), String> {
        self.apply(event)
    }
}

impl Evolve for Link {
    type Event = InstallLinkEvent;
    fn evolve(&mut self, event: &InstallLinkEvent) -> Result<(), String> {
        self.apply(event)
    }
}

impl Evolve for Installation {
    type Event = InstallationEvent;
    fn evolve(&mut self, event: &InstallationEvent) -> Result<(), String> {
        self.apply(event)
    }
}

impl Evolve for Key {
    type Event = KeyEvent;
    fn evolve(&mut self, event: &KeyEvent) -> Result<(), String> {
        self.apply(event)
    }
}

impl Evolve for crate::webhooks::Endpoint {
    type Event = event_schemas::webhook::WebhookEvent;
    fn evolve(&mut self, event: &Self::Event) -> Result<(), String> {
        self.apply(event)
    }
}

/// The state `events` fold into.
#[track_caller]
pub fn given<S: Evolve>(events: impl IntoIterator<Item = S::Event>) -> S {
    let mut state = S::default();
    for e in events {
        if let Err(why) = state.evolve(&e) {
            panic!("a given event does not apply: {why}");
        }
    }
    state
}

/// A decision to assert on.
pub struct When<E, X>(Result<Vec<E>, X>);

/// Wraps a decision (the result of a command's decide function).
pub fn when<E, X>(decision: Result<Vec<E>, X>) -> When<E, X> {
    When(decision)
}

impl<E: Debug + PartialEq, X: Debug + PartialEq> When<E, X> {
    /// Asserts the decision is exactly `expected`; returns the events so a
    /// test can apply them and go on.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = E>) -> Vec<E> {
        let expected: Vec<E> = expected.into_iter().collect();
        match self.0 {
            Ok(events) => {
                assert_eq!(events, expected, "the decided events");
                events
            }
            Err(e) => panic!("expected events {expected:?}, the command was refused: {e:?}"),
        }
    }

    /// Asserts the command is refused with exactly `expected`.
    #[track_caller]
    pub fn then_err(self, expected: X) {
        match self.0 {
            Ok(events) => panic!("expected the refusal {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected, "the refusal"),
        }
    }
}

/// The events that found organisation `id`: created by `owner`, who is its
/// owner, with the developer terms in force accepted when `terms`.
pub fn founded(id: uuid::Uuid, owner: uuid::Uuid, terms: bool) -> Vec<OrgEvent> {
    use event_schemas::org::{MemberAdded, OrgCreated, TermsAccepted};
    let mut events = vec![
        OrgEvent::Created(OrgCreated {
            org_id: id,
            slug: format!("org-{}", id.as_u128()),
            name: "Org".into(),
            owner,
        }),
        OrgEvent::MemberAdded(MemberAdded {
            user_id: owner,
            role: "owner".into(),
            invitation_id: None,
        }),
    ];
    if terms {
        events.push(OrgEvent::TermsAccepted(TermsAccepted {
            version: crate::orgs::INITIAL_TERMS.into(),
            user_id: owner,
        }));
    }
    events
}

/// Applies decided events to a state, as the log would.
#[track_caller]
pub fn and_then<S: Evolve>(state: &mut S, events: &[S::Event]) {
    for e in events {
        if let Err(why) = state.evolve(e) {
            panic!("a decided event does not apply: {why}");
        }
    }
}
