//! The read side in one handle: connections to the read models and the
//! published checkpoints, with the bounded wait for a position
//! (read-your-writes). Handlers (JSON and console), the verifier loader and
//! the audit feeder read through it and the `read` module of each model.
