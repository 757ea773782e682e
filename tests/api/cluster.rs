//! A private PostgreSQL cluster for tests that stop and restart the database itself, which
//! the shared test server must never be. It uses the shell helpers of
//! `scripts/lib/postgres.sh` (binaries under /usr/lib/postgresql/*/bin, run as `postgres`
//! when the tests run as root), keeps fsync on, and is stopped and deleted when dropped.

use std::process::Command;

pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

/// Runs `script` in bash after sourcing the project's PostgreSQL helpers, with `DATA`,
/// `SOCK` and `PORT` set for `cluster`.
fn helpers(dir: &std::path::Path, port: u16, script: &str) -> Command {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/postgres.sh");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("set -e; source {lib}; {script}"))
        .env("DATA", dir.join("data"))
        .env("SOCK", dir.join("sock"))
        .env("PORT", port.to_string());
    command
}

impl Cluster {
    /// Creates and starts a cluster on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cxmetrics-cluster.")
            .tempdir()
            .expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self { dir, port };
        cluster.run(r#"pg_init "$DATA""#).await;
        cluster.restart().await;
        cluster
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts it again (after a crash: with recovery), waiting until it accepts connections.
    pub async fn restart(&self) {
        self.run(r#"pg_start "$DATA" "$PORT" "$SOCK" -c max_connections=100"#)
            .await;
    }

    /// Stops it the way a crash does: every process exits at once, nothing is flushed
    /// beyond what was already committed.
    pub async fn kill(&self) {
        self.run(r#"pg_as_owner "$(pg_bindir)/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null"#)
            .await;
    }

    async fn run(&self, script: &str) {
        let mut command =
            tokio::process::Command::from(helpers(self.dir.path(), self.port, script));
        let out = command.output().await.expect("run bash");
        assert!(
            out.status.success(),
            "{script} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever state it is in; the directory goes with `dir`.
        let _ = helpers(
            self.dir.path(),
            self.port,
            r#"[ -f "$DATA/postmaster.pid" ] && pg_as_owner "$(pg_bindir)/pg_ctl" -D "$DATA" -m immediate -w stop"#,
        )
        .output();
    }
}
