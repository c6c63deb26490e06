//! The directories the launcher hands to PostgreSQL: made fresh, never
//! through a path someone else planted (a symlink, a directory of theirs),
//! owned by the server's user, and checked again whenever they are found.
//!
//! As root, the cluster may have to live outside the data directory (when
//! the `postgres` user cannot traverse to it). That directory is made under
//! `/var/tmp` with `mkdtemp` semantics (an unpredictable name, created
//! atomically with mode 0700) and its path recorded in the data directory,
//! which only root can write, so it is found again at the next start.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{io, LaunchError};

/// The file in the data directory recording where the cluster lives when
/// it lives outside.
const LOCATION: &str = "postgres-location";

fn refused(what: &'static str, path: &Path) -> LaunchError {
    LaunchError::Io {
        what,
        path: path.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    }
}

/// Checks that `dir` is a directory itself (not a symlink to one), owned
/// by `uid` and closed to everyone else.
pub(super) fn check(dir: &Path, uid: u32) -> Result<(), LaunchError> {
    let m = std::fs::symlink_metadata(dir).map_err(io("cannot stat", dir))?;
    if m.file_type().is_symlink() || !m.is_dir() {
        return Err(refused("is not a directory (a symlink or a file)", dir));
    }
    if m.uid() != uid {
        return Err(refused("belongs to another user", dir));
    }
    if m.mode() & 0o077 != 0 {
        return Err(refused("is open to other users", dir));
    }
    Ok(())
}

/// Creates `dir` (which must not exist yet: `mkdir` does not follow a
/// planted symlink) with mode 0700, owned by `owner` when given; or, when
/// it exists, checks it is exactly that.
pub(super) fn create_or_check(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), LaunchError> {
    use std::os::unix::fs::DirBuilderExt;
    let uid = owner.map_or_else(|| nix::unistd::geteuid().as_raw(), |(uid, _)| uid);
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            if let Some((uid, gid)) = owner {
                chown_dir(dir, uid, gid)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => check(dir, uid),
        Err(e) => Err(io("cannot create", dir)(e)),
    }
}

/// Hands a directory root just made to `uid`: through an open handle, so
/// the chown lands on the directory made, whatever its path names now.
fn chown_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), LaunchError> {
    let handle = std::fs::File::open(dir).map_err(io("cannot open", dir))?;
    if !handle.metadata().map_err(io("cannot stat", dir))?.is_dir() {
        return Err(refused("is not a directory", dir));
    }
    std::os::unix::fs::fchown(&handle, Some(uid), Some(gid)).map_err(io("cannot chown", dir))?;
    handle
        .set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(io("cannot chmod", dir))
}

/// Where the cluster of `data_dir` lives when the postgres user (`uid`,
/// `gid`) cannot reach the data directory: the directory recorded in
/// `data_dir`, checked; or a fresh one under `base`, recorded. A cluster a
/// previous version kept at `legacy` is adopted if it passes the check.
pub(super) fn outside(
    data_dir: &Path,
    base: &Path,
    legacy: &Path,
    (uid, gid): (u32, u32),
) -> Result<PathBuf, LaunchError> {
    let record = data_dir.join(LOCATION);
    match std::fs::read_to_string(&record) {
        Ok(text) => {
            let dir = PathBuf::from(text.trim());
            check(&dir, uid)?;
            return Ok(dir);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot read", &record)(e)),
    }
    let dir = if check(legacy, uid).is_ok() {
        legacy.to_path_buf()
    } else {
        let made = tempfile::Builder::new()
            .prefix("gatehouse-postgres-")
            .tempdir_in(base)
            .map_err(io("cannot create a directory in", base))?
            .keep();
        chown_dir(&made, uid, gid)?;
        made
    };
    std::fs::write(&record, dir.as_os_str().as_encoded_bytes())
        .map_err(io("cannot write", &record))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another user's ids, for a root test process to plant with.
    fn someone_else() -> Option<(u32, u32)> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: planting another user's directory needs root");
            return None;
        }
        Some((65534, 65534))
    }

    #[test]
    fn a_planted_symlink_or_foreign_directory_is_never_used() {
        let Some(other) = someone_else() else { return };
        let me = (0, 0);
        let root = tempfile::tempdir().unwrap();
        let (data, base) = (root.path().join("data"), root.path().join("var-tmp"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&base).unwrap();
        let target = root.path().join("precious");
        std::fs::create_dir(&target).unwrap();

        // The old predictable name, planted as a symlink: not adopted, not
        // written through; a fresh directory is made instead.
        let legacy = base.join("gatehouse-postgres-predictable");
        std::os::unix::fs::symlink(&target, &legacy).unwrap();
        let dir = outside(&data, &base, &legacy, me).unwrap();
        assert_ne!(dir, legacy);
        assert!(dir.starts_with(&base));
        check(&dir, 0).unwrap();
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        // Found again from the record.
        assert_eq!(outside(&data, &base, &legacy, me).unwrap(), dir);

        // The recorded directory swapped for a symlink: refused.
        std::fs::remove_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&target, &dir).unwrap();
        assert!(outside(&data, &base, &legacy, me).is_err());

        // A directory someone else made at the old name is not adopted.
        let data2 = root.path().join("data2");
        std::fs::create_dir(&data2).unwrap();
        let foreign = base.join("gatehouse-postgres-foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::os::unix::fs::chown(&foreign, Some(other.0), Some(other.1)).unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir2 = outside(&data2, &base, &foreign, me).unwrap();
        assert_ne!(dir2, foreign);
    }

    #[test]
    fn a_socket_directory_is_created_private_or_refused_when_planted() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("run");
        create_or_check(&fresh, None).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        create_or_check(&fresh, None).unwrap();

        let target = root.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let planted = root.path().join("planted");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        assert!(create_or_check(&planted, None).is_err(), "a symlink");

        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(create_or_check(&open, None).is_err(), "open to others");

        if let Some(other) = someone_else() {
            let theirs = root.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&theirs, Some(other.0), Some(other.1)).unwrap();
            assert!(create_or_check(&theirs, None).is_err(), "another user's");
        }
    }
}
