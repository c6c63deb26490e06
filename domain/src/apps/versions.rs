//! Versions: drafts with a manifest, validation, publishing.

#[allow(unused_imports)]
use super::*;

/// `CreateVersion`: a draft.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateVersion {
    /// The new version's id.
    pub version_id: Uuid,
    /// Its label, unique in the app (such as `1.2.0`).
    pub label: String,
    /// Its manifest (validated on publish).
    pub manifest: Value,
}

/// Decides [`CreateVersion`] by `actor`, a manager of the app.
pub fn create_version(
    org: &Org,
    app: &App,
    actor: Uuid,
    cmd: &CreateVersion,
) -> Result<Vec<AppEvent>, AppError> {
    let (version_id, label, manifest) = (cmd.version_id, cmd.label.as_str(), cmd.manifest.clone());
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    let label = label.trim();
    let mut checks = Checks::default();
    checks.check(
        (1..=32).contains(&label.len())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c)),
        "/label",
        "must be 1 to 32 of a-z, A-Z, 0-9, . + - (such as 1.2.0)",
    );
    check_manifest_size(&mut checks, &manifest);
    checks.finish()?;
    if app.versions.values().any(|v| v.label == label) {
        return Err(AppError::VersionLabelTaken);
    }
    Ok(vec![AppEvent::VersionCreated(VersionCreated {
        version_id,
        label: label.to_owned(),
        manifest,
    })])
}

fn check_manifest_size(checks: &mut Checks, manifest: &Value) {
    checks.check(
        serde_json::to_vec(manifest).map_or(0, |b| b.len()) <= 64 * 1024,
        "/manifest",
        "must be at most 64 KiB",
    );
}

fn draft(app: &App, version_id: Uuid) -> Result<&Version, AppError> {
    let v = app
        .versions
        .get(&version_id)
        .ok_or(AppError::NoSuchVersion)?;
    if v.published {
        return Err(AppError::VersionPublished);
    }
    Ok(v)
}

/// `UpdateManifest`: drafts only.
pub fn update_manifest(
    org: &Org,
    app: &App,
    actor: Uuid,
    version_id: Uuid,
    manifest: Value,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    draft(app, version_id)?;
    let mut checks = Checks::default();
    check_manifest_size(&mut checks, &manifest);
    checks.finish()?;
    Ok(vec![AppEvent::ManifestUpdated(ManifestUpdated {
        version_id,
        manifest,
    })])
}

/// `PublishVersion`: a valid draft, with the terms accepted.
pub fn publish(
    org: &Org,
    app: &App,
    actor: Uuid,
    version_id: Uuid,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    require_terms(org)?;
    let v = draft(app, version_id)?;
    let errors = manifest::validate(&v.manifest);
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    Ok(vec![AppEvent::VersionPublished(VersionPublished {
        version_id,
    })])
}
