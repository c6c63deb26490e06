//! A Gatehouse server as a child process (the `gatehouse-it-server`
//! binary), for what one process cannot show: its log output, a kill, two
//! nodes over one database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::server::{TestServer, TEST_KEK};

/// A running server process; killed when dropped.
pub struct ServerProcess {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    /// Its data directory (its mail is written under `mail/`).
    pub dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    #[allow(clippy::zombie_processes)] // Drop kills and waits for it
    /// Starts `bin serve` over the database at `conninfo` (empty: its
    /// embedded cluster, under `dir`) with
    /// `RUST_LOG=<log_filter>`, its output to `<dir>/server.log`; waits until
    /// it is healthy.
    pub async fn spawn(bin: &str, conninfo: &str, dir: &Path, log_filter: &str) -> Self {
        Self::spawn_with(bin, conninfo, dir, log_filter, &[]).await
    }

    #[allow(clippy::zombie_processes)] // Drop kills and waits for it
    /// [`ServerProcess::spawn`] with more environment (`GATEHOUSE_*`
    /// settings).
    pub async fn spawn_with(
        bin: &str,
        conninfo: &str,
        dir: &Path,
        log_filter: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(bin);
        // No conninfo: the server starts its embedded cluster.
        match conninfo {
            "" => command.env_remove("DATABASE_URL"),
            conninfo => command.env("DATABASE_URL", conninfo),
        };
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("GATEHOUSE_KEK", TEST_KEK)
            .env("GATEHOUSE_DATA_DIR", dir)
            .env("RUST_LOG", log_filter)
            .env("GATEHOUSE_GATEWAY_TOKEN", crate::server::GATEWAY_TOKEN)
            // The tests sign many accounts up from one address.
            .env("GATEHOUSE_SIGN_UPS_PER_HOUR", "1000000")
            .env("GATEHOUSE_MAILS_PER_ADDRESS_PER_HOUR", "1000")
            .envs(env.iter().copied())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        // An embedded cluster is created first (initdb): up to a minute.
        for _ in 0..2400 {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
                if r.status().is_success() {
                    return ServerProcess {
                        child,
                        base,
                        log,
                        dir: dir.to_path_buf(),
                    };
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server process did not start; see {}", log.display());
    }

    /// A test client for it (the helpers of [`TestServer`]).
    pub fn client(&self) -> TestServer {
        let mut client = TestServer::attach(&self.base);
        client.mail = crate::mail::Inbox::files(&self.dir.join("mail"));
        client
    }

    /// One look at `/readyz`: the log head, if every projection is active
    /// and has applied it; `None` while any lags or the server does not
    /// answer (say, while its database restarts).
    pub async fn caught_up(&self) -> Option<u64> {
        let r = reqwest::Client::new()
            .get(format!("{}/readyz", self.base))
            .bearer_auth(crate::server::GATEWAY_TOKEN)
            .send()
            .await
            .ok()?;
        let ready: serde_json::Value = r.json().await.ok()?;
        let all = ready["projections"]
            .as_array()?
            .iter()
            .all(|p| p["lag"] == 0 && p["state"] == "active");
        if all {
            ready["head"].as_u64()
        } else {
            None
        }
    }

    /// Stops it with SIGTERM and waits, so its log is complete.
    pub fn stop(&mut self) -> String {
        self.stop_with(nix::sys::signal::Signal::SIGTERM).1
    }

    /// Stops it with `signal` (SIGINT is Ctrl-C) and waits: its exit
    /// status and its complete log.
    pub fn stop_with(
        &mut self,
        signal: nix::sys::signal::Signal,
    ) -> (std::process::ExitStatus, String) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal);
        let status = self.child.wait().unwrap();
        (status, std::fs::read_to_string(&self.log).unwrap())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
