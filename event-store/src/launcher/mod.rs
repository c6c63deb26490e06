//! The local PostgreSQL launcher: the embedded default when no
//! `DATABASE_URL` is given.
//!
//! It initialises (the first time) and starts a private cluster under a data
//! directory from the machine's PostgreSQL binaries, listening only on a Unix
//! socket in a directory of its own, with `trust` authentication on that
//! socket (the directory is the access control). As root it runs the binaries
//! as the `postgres` system user, since PostgreSQL refuses to run as root.
//!
//! A watchdog process holds a pipe from the launching process; when that
//! process exits for any reason, even SIGKILL, the pipe closes and the
//! watchdog stops the cluster. A cluster found already running (started by
//! another process) is reused and left running.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod private_dir;

/// The superuser the cluster is initialised with.
pub const SUPERUSER: &str = "gatehouse";
/// The port number in the socket's name (no TCP listener is opened).
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 100;

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No PostgreSQL server binaries on this machine.
    #[error(
        "no PostgreSQL server binaries found (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: \
         install the `postgresql` package (apt-get install -y postgresql) or set DATABASE_URL"
    )]
    NoBinaries,
    /// Running as root and there is no `postgres` user to run as.
    #[error("running as root, but there is no `postgres` system user to run PostgreSQL as")]
    NoPostgresUser,
    /// A file system operation failed.
    #[error("{what}: {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `DATABASE_URL` does not parse.
    #[error("DATABASE_URL is not a valid PostgreSQL connection string")]
    BadUrl(#[source] tokio_postgres::Error),
    /// The embedded cluster started but its database could not be prepared.
    #[error("cannot prepare the embedded database")]
    Prepare(#[source] tokio_postgres::Error),
    /// A PostgreSQL tool failed.
    #[error("{tool} failed ({status}); see {log}")]
    Tool {
        /// Which tool.
        tool: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Where its output went.
        log: PathBuf,
    },
}

/// Settings of the private cluster.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// `fsync` and `synchronous_commit` on (the server and benchmarks); off
    /// trades durability against OS crashes for speed (tests).
    pub durable: bool,
    /// `max_connections`.
    pub max_connections: u32,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            durable: true,
            max_connections: 200,
        }
    }
}

/// A running private cluster.
pub struct LocalPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    watchdog: Option<(Child, std::process::ChildStdin)>,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LaunchError {
    let path = path.to_path_buf();
    move |source| LaunchError::Io { what, path, source }
}

impl LocalPostgres {
    /// Initialises (if needed) and starts the cluster under `dir`.
    pub fn start(dir: &Path, options: &LaunchOptions) -> Result<Self, LaunchError> {
        let bin_dir = find_binaries().ok_or(LaunchError::NoBinaries)?;
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(LaunchError::NoPostgresUser)?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        std::fs::create_dir_all(dir).map_err(io("cannot create the data directory", dir))?;
        let dir = dir
            .canonicalize()
            .map_err(io("cannot resolve the data directory", dir))?;
        let mut pg_dir = dir.join("postgres");
        if let Some((uid, gid)) = run_as {
            // The postgres user must reach its directory through ours. Ours
            // is opened up for traversal; if an ancestor (say /root) is
            // closed to it, the cluster lives in a fresh directory under
            // /var/tmp instead, recorded in ours so it is found again.
            let mut perms = std::fs::metadata(&dir)
                .map_err(io("cannot stat", &dir))?
                .permissions();
            perms.set_mode(perms.mode() | 0o711);
            std::fs::set_permissions(&dir, perms).map_err(io("cannot chmod", &dir))?;
            if !reachable_by(&dir, uid, gid) {
                let legacy =
                    Path::new("/var/tmp").join(format!("gatehouse-postgres-{}", short_hash(&dir)));
                pg_dir = private_dir::outside(&dir, Path::new("/var/tmp"), &legacy, (uid, gid))?;
                tracing::info!(cluster = %pg_dir.display(), "the postgres user cannot reach the data directory; keeping the cluster here");
            } else {
                private_dir::create_or_check(&pg_dir, run_as)?;
            }
        } else {
            private_dir::create_or_check(&pg_dir, None)?;
        }

        let data_dir = pg_dir.join("data");
        let mut socket_dir = pg_dir.join("run");
        if socket_dir
            .join(format!(".s.PGSQL.{PORT}"))
            .as_os_str()
            .len()
            > MAX_SOCKET_PATH
        {
            socket_dir = std::env::temp_dir().join(format!("gatehouse-{}", short_hash(&pg_dir)));
        }
        let pg = LocalPostgres {
            bin_dir,
            data_dir,
            socket_dir,
            run_as,
            watchdog: None,
        };
        pg.init_and_start(&pg_dir, options)
    }

    fn init_and_start(
        mut self,
        pg_dir: &Path,
        options: &LaunchOptions,
    ) -> Result<Self, LaunchError> {
        let log = pg_dir.join("postgres.log");
        if !self.data_dir.join("PG_VERSION").exists() {
            let mut initdb = self.command("initdb");
            initdb.arg("-D").arg(&self.data_dir).args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]);
            if !options.durable {
                initdb.arg("--no-sync");
            }
            self.run("initdb", initdb, &pg_dir.join("initdb.log"))?;
        }
        self.private_socket_dir()?;
        let on = if options.durable { "on" } else { "off" };
        let conf = format!(
            "# Written by gatehouse at every start.\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = {}\n\
             fsync = {on}\n\
             synchronous_commit = {on}\n\
             full_page_writes = {on}\n\
             shared_buffers = '256MB'\n\
             logging_collector = off\n",
            self.socket_dir.display(),
            options.max_connections
        );
        let conf_path = self.data_dir.join("gatehouse.conf");
        write_owned(&conf_path, conf.as_bytes(), self.run_as)?;
        let main_conf = self.data_dir.join("postgresql.conf");
        let main = std::fs::read_to_string(&main_conf).map_err(io("cannot read", &main_conf))?;
        if !main.contains("include_if_exists = 'gatehouse.conf'") {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&main_conf)
                .map_err(io("cannot open", &main_conf))?;
            f.write_all(b"\ninclude_if_exists = 'gatehouse.conf'\n")
                .map_err(io("cannot write", &main_conf))?;
        }

        let mut status = self.command("pg_ctl");
        status.arg("status").arg("-D").arg(&self.data_dir);
        let running = status
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if running {
            tracing::info!(data_dir = %self.data_dir.display(), "reusing the running local PostgreSQL");
            return Ok(self);
        }
        let mut start = self.command("pg_ctl");
        start
            .arg("start")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "120"]);
        self.run("pg_ctl start", start, &pg_dir.join("pg_ctl.log"))?;
        self.watchdog = Some(self.spawn_watchdog()?);
        tracing::info!(socket = %self.socket_dir.display(), "started the local PostgreSQL");
        Ok(self)
    }

    /// Creates the socket directory with mode 0700 for the server's user, or
    /// checks that an existing one is exactly that: with `trust`
    /// authentication, this directory is the access control.
    fn private_socket_dir(&self) -> Result<(), LaunchError> {
        private_dir::create_or_check(&self.socket_dir, self.run_as)
    }

    /// Connection settings for `dbname` on this cluster.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(&self.socket_dir)
            .port(PORT)
            .user(SUPERUSER)
            .dbname(dbname)
            .application_name("gatehouse");
        c
    }

    /// A libpq-style connection string for `dbname`, for tools and logs.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user={SUPERUSER} dbname={dbname}",
            self.socket_dir.display()
        )
    }

    /// Stops the cluster if this process started it (fast shutdown: clients
    /// are disconnected, committed work is kept).
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            // Closing the pipe makes the watchdog run `pg_ctl stop`.
            drop(stdin);
            let _ = child.wait();
        }
    }

    fn spawn_watchdog(&self) -> Result<(Child, std::process::ChildStdin), LaunchError> {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        // Smart first: a server that closed its sessions (or died with
        // them) is waited for, not cut off; fast if a session lingers.
        let script = "cat >/dev/null; \"$0\" stop -D \"$1\" -m smart -w -t 5 >/dev/null 2>&1 \
                      || exec \"$0\" stop -D \"$1\" -m fast -w -t 60";
        let mut cmd = self.command_path(Path::new("/bin/sh"));
        cmd.arg("-c")
            .arg(script)
            .arg(&pg_ctl)
            .arg(&self.data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's process group: Ctrl-C reaches the server,
            // which stops the cluster in order, not the watchdog.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(io("cannot start the watchdog", &pg_ctl))?;
        let stdin = child.stdin.take().ok_or_else(|| LaunchError::Io {
            what: "the watchdog has no stdin",
            path: pg_ctl.clone(),
            source: std::io::Error::other("no pipe"),
        })?;
        Ok((child, stdin))
    }

    fn command(&self, tool: &str) -> Command {
        self.command_path(&self.bin_dir.join(tool))
    }

    fn command_path(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("LC_ALL", "C").env_remove("PGDATA");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid).current_dir("/");
        }
        cmd
    }

    fn run(&self, tool: &'static str, mut cmd: Command, log: &Path) -> Result<(), LaunchError> {
        let out = cmd.output().map_err(io("cannot run", &self.bin_dir))?;
        let mut text = out.stdout;
        text.extend_from_slice(&out.stderr);
        // The log is ours (root's) even when the tool ran as postgres.
        std::fs::write(log, &text).map_err(io("cannot write", log))?;
        if !out.status.success() {
            return Err(LaunchError::Tool {
                tool,
                status: out.status,
                log: log.to_path_buf(),
            });
        }
        Ok(())
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_owned(path: &Path, bytes: &[u8], owner: Option<(u32, u32)>) -> Result<(), LaunchError> {
    std::fs::write(path, bytes).map_err(io("cannot write", path))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io("cannot chown", path))?;
    }
    Ok(())
}

/// Whether `uid`/`gid` can traverse every directory from `/` to `dir`.
fn reachable_by(dir: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().all(|a| match std::fs::metadata(a) {
        Ok(m) => {
            let mode = m.mode();
            mode & 0o001 != 0
                || (m.uid() == uid && mode & 0o100 != 0)
                || (m.gid() == gid && mode & 0o010 != 0)
        }
        Err(_) => false,
    })
}

fn short_hash(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Finds a directory with `initdb`, `pg_ctl` and `postgres`: `PATH` first,
/// then the newest `/usr/lib/postgresql/<version>/bin`.
pub fn find_binaries() -> Option<PathBuf> {
    find_binaries_in(std::env::var_os("PATH"), Path::new("/usr/lib/postgresql"))
}

fn find_binaries_in(path: Option<std::ffi::OsString>, lib_root: &Path) -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|t| d.join(t).is_file())
    };
    if let Some(path) = path {
        for dir in std::env::split_paths(&path) {
            if has_all(&dir) {
                // Debian links pg_ctl into PATH but not always postgres;
                // resolve to the real directory so all three match.
                let real = dir.join("pg_ctl").canonicalize().ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(lib_root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The database to use: a configured server, or the embedded cluster (kept
/// running as long as this value lives).
pub struct Opened {
    /// Connection settings.
    pub config: tokio_postgres::Config,
    /// The embedded cluster, when no URL was given.
    pub local: Option<LocalPostgres>,
}

/// The name of the embedded default's database.
pub const EMBEDDED_DATABASE: &str = "gatehouse";

/// Resolves `DATABASE_URL`, or starts the embedded cluster under `data_dir`
/// and makes sure its database exists.
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
    options: LaunchOptions,
) -> Result<Opened, LaunchError> {
    if let Some(url) = database_url {
        let config = url.parse().map_err(LaunchError::BadUrl)?;
        return Ok(Opened {
            config,
            local: None,
        });
    }
    let dir = data_dir.to_path_buf();
    let local = tokio::task::spawn_blocking(move || LocalPostgres::start(&dir, &options))
        .await
        .map_err(|e| LaunchError::Io {
            what: "the launcher task failed",
            path: data_dir.to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    let (client, conn) = local
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(LaunchError::Prepare)?;
    let driver = tokio::spawn(conn);
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&EMBEDDED_DATABASE],
        )
        .await
        .map_err(LaunchError::Prepare)?
        .is_some();
    if !exists {
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {EMBEDDED_DATABASE}"))
            .await
        {
            // Another process may have created it a moment ago.
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(LaunchError::Prepare(e));
            }
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(Opened {
        config: local.config(EMBEDDED_DATABASE),
        local: Some(local),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_binaries_the_error_names_the_package_and_database_url() {
        let empty = std::env::temp_dir().join("gatehouse-no-postgres-here");
        assert_eq!(find_binaries_in(Some("".into()), &empty), None);
        let message = LaunchError::NoBinaries.to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        assert!(
            message.contains("apt-get install -y postgresql"),
            "{message}"
        );
        assert!(message.contains("DATABASE_URL"), "{message}");
    }

    #[test]
    fn the_newest_installed_version_is_chosen() {
        let root = std::env::temp_dir().join(format!("gatehouse-pg-root-{}", std::process::id()));
        for v in ["13", "15", "9"] {
            let bin = root.join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for tool in ["initdb", "pg_ctl", "postgres"] {
                std::fs::write(bin.join(tool), b"").unwrap();
            }
        }
        assert_eq!(
            find_binaries_in(None, &root),
            Some(root.join("15").join("bin"))
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
