//! Why the server could not start, and how that becomes the process's
//! exit code.

use event_store::launcher::LaunchError;
use event_store::StoreError;

use crate::vault::VaultError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be resolved or started.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The event store failed.
    #[error("event store")]
    Store(#[from] StoreError),
    /// The key vault failed.
    #[error("key vault")]
    Vault(#[from] VaultError),
    /// A projection could not be prepared.
    #[error("projection")]
    Projection(#[from] projections::ProjectionError),
    /// The listener failed.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
    /// An operator command was refused.
    #[error("{0}")]
    Refused(String),
}

/// Prints an error and its causes on one line and turns the outcome into
/// the process's exit code.
pub fn exit_code(outcome: Result<(), ServerError>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut line = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                line.push_str(": ");
                line.push_str(&s.to_string());
                source = s.source();
            }
            eprintln!("error: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}
