//! A private PostgreSQL server per test (tests/servers/postgres.sh): a free
//! port on 127.0.0.1, password authentication, TLS with the script's CA.
//! Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Set to 1 where PostgreSQL 15 is installed (CI): the tests fail instead of skipping.
pub const REQUIRE: &str = "HOMEBASE_REQUIRE_PG";

pub struct PgServer {
    dir: tempfile::TempDir,
    pub port: u16,
    password: String,
}

impl PgServer {
    /// A running server, or `None` (skip) where PostgreSQL is not installed.
    pub fn start(test: &str) -> Option<PgServer> {
        let installed = Path::new("/usr/lib/postgresql/15/bin/initdb").exists()
            && crate::common::runs("openssl", &["version"]);
        if !installed {
            if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE}=1 but PostgreSQL 15 (postgresql-15) is not installed");
            }
            eprintln!("skipping {test}: PostgreSQL 15 is not installed");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("homebase-pg-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let out = Command::new(Path::new(ROOT).join("tests/servers/postgres.sh"))
            .args(["start"])
            .arg(dir.path())
            .env("PG_PORT", port.to_string())
            .env("PG_FSYNC", "off")
            .output()
            .expect("run postgres.sh");
        assert!(
            out.status.success(),
            "postgres.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let password = std::fs::read_to_string(dir.path().join("pw"))
            .expect("password file")
            .trim()
            .to_string();
        Some(PgServer {
            dir,
            port,
            password,
        })
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("pw")
    }

    /// The URL homebase is given (no password in it).
    pub fn url(&self) -> String {
        format!(
            "postgres://homebase@127.0.0.1:{}/postgres?sslmode=verify-full",
            self.port
        )
    }

    /// The `state:` block of homebase.yaml for an organisation's schema.
    pub fn state_yaml(&self, schema: &str) -> String {
        format!(
            "state:\n  url: {}\n  schema: {schema}\n  ca_file: {}\n  password_file: {}\n",
            self.url(),
            self.ca().display(),
            self.password_file().display()
        )
    }

    /// The shipped homebase.yaml with the state on this server, and the
    /// server files (the gateway's wg0.conf, the LDIF export) in `shared`:
    /// they belong to the servers, not to a runner's checkout.
    pub fn config(&self, schema: &str, shared: &Path) -> String {
        let shipped =
            std::fs::read_to_string(Path::new(ROOT).join("homebase.yaml")).expect("homebase.yaml");
        for line in [
            "state: .homebase/state.db\n",
            "    kind: wireguard-file\n",
            "    kind: local\n",
        ] {
            assert!(shipped.contains(line), "homebase.yaml has no {line:?}");
        }
        shipped
            .replace("state: .homebase/state.db\n", &self.state_yaml(schema))
            .replace(
                "    kind: wireguard-file\n",
                &format!(
                    "    kind: wireguard-file\n    path: {}\n",
                    shared.join("wg0.conf").display()
                ),
            )
            .replace(
                "    kind: local\n",
                &format!(
                    "    kind: local\n    ldif: {}\n",
                    shared.join("directory.ldif").display()
                ),
            )
    }

    fn client_env(&self, cmd: &mut Command) {
        cmd.env("PGPASSWORD", &self.password)
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", self.ca())
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "homebase")
            .env("PGDATABASE", "postgres");
    }

    /// `psql -At -c SQL`: the rows, `|`-separated.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|err| panic!("psql {sql}: {err}"))
    }

    /// Like [`PgServer::psql`], with the error instead of a panic.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new("psql");
        self.client_env(&mut cmd);
        let out = cmd
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `pg_dump` of the whole database, data and schema.
    pub fn pg_dump(&self) -> String {
        let mut cmd = Command::new("pg_dump");
        self.client_env(&mut cmd);
        let out = cmd.output().expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server (as a crash of the database would look to homebase).
    pub fn stop(&self) {
        let _ = Command::new(Path::new(ROOT).join("tests/servers/postgres.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}
