//! Accounts beside the log: the credentials and mailed tokens that must
//! never enter it (they change and must be destroyable), the bounded
//! password hasher, sign-in throttles, and the log's view of who holds an
//! address. The HTTP handlers are in `routes::accounts`.

pub mod directory;
pub mod erasure;
pub mod hashing;
pub mod throttle;
pub mod tokens;
