//! How the token endpoint issues access tokens: the claims' issuer and
//! audience, the lifetime and the request rates, from configuration.

use crate::accounts::throttle::Rate;

/// How tokens are issued: the claims' issuer and audience, the lifetime,
/// and the request rates.
pub struct TokenSettings {
    /// The `iss` claim.
    pub(crate) issuer: String,
    /// The `aud` claim.
    pub(crate) audience: String,
    /// How long a token lives.
    pub(crate) ttl: chrono::Duration,
    /// Tokens per client and client address per second, per node: charged
    /// only once the secret is right, so a client id alone (it is not a
    /// secret) cannot spend a client's budget.
    pub(crate) issued: Rate,
    /// Failed authentications per client address, so one address cannot
    /// hammer the endpoint with wrong secrets either.
    pub(crate) failures: Rate,
}

/// Failed client authentications one address may make in 15 minutes.
pub const FAILURES_PER_ADDRESS: usize = 60;

impl TokenSettings {
    /// Settings from configuration.
    pub fn new(issuer: String, audience: String, ttl: chrono::Duration, rate: u32) -> Self {
        TokenSettings {
            issuer,
            audience,
            ttl,
            issued: Rate::new(rate.max(1) as usize, std::time::Duration::from_secs(1)),
            failures: Rate::new(
                FAILURES_PER_ADDRESS,
                std::time::Duration::from_secs(15 * 60),
            ),
        }
    }
}
