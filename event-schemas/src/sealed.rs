//! Personal data as it appears in events: sealed with AES-256-GCM under a key
//! of its own subject (crypto-shredding). Deleting the subject's key erases the
//! data from every copy of the log while the hash chain, which covers the
//! ciphertext, still verifies. The sealing itself lives with the key vault in
//! the server; this is only the wire form.

use serde::{Deserialize, Serialize};

/// Base64 of `nonce || ciphertext || tag`, sealed under the subject's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Sealed(pub String);
