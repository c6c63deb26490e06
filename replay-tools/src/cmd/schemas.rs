//! `schemas check|write`: the committed JSON Schemas of the event types.

use std::process::ExitCode;

use anyhow::Context;

/// What `schemas` does.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemasAction {
    /// Fail when the files and the code differ, or a published version
    /// changed incompatibly without a new version and an upcaster.
    Check,
    /// Write the current schemas.
    Write,
}

/// Checks or writes the schema files in `dir`.
pub fn schemas(action: SchemasAction, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let code = event_schemas::schemas::all();
    match action {
        SchemasAction::Check => {
            let findings = event_schemas::schemas::check(&code, dir)
                .with_context(|| format!("reading {}", dir.display()))?;
            for f in &findings {
                println!("FAILED: {f}");
            }
            if findings.is_empty() {
                println!("ok: {} event types match {}", code.len(), dir.display());
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        SchemasAction::Write => {
            let (written, refused) = event_schemas::schemas::write(&code, dir)
                .with_context(|| format!("writing {}", dir.display()))?;
            for f in &written {
                println!("wrote {f}");
            }
            for f in &refused {
                println!("REFUSED: {f}");
            }
            Ok(if refused.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
