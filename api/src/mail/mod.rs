//! Mail: an outbox in PostgreSQL, sent by the `mail` background role.
//!
//! A handler writes a [`Letter`] to the outbox (sealed under the KEK: its
//! links carry single-use tokens) and wakes this node's sender; the sender
//! leases due mail with `FOR UPDATE SKIP LOCKED` (one node sends each
//! mail), sends it over SMTP (`--smtp-url`) or, without one, writes it as an
//! `.eml` file under `<data-dir>/mail/`, and records how it went. Delivery is
//! at least once: a node that dies between sending and recording leaves a
//! lease that expires, and the mail goes again. Once sent (or given up on)
//! the message is dropped; the row stays as the record, without the token.

pub mod letters;
pub mod notices;
pub mod outbox;
pub mod sender;

pub use letters::Letter;
pub use outbox::enqueue;
