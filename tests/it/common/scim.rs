//! The SCIM part of the harness: a real `scim2-server` per test (started
//! by `tests/servers/scim.sh`) or a SCIMMY server (`tests/servers/scimmy.sh`,
//! the second implementation), a workspace with a `homebase.yaml` pointing
//! at it, the real `homebase` binary, and a plain HTTP view of the server
//! to check what arrived.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The environment variable the test configurations name in `token_env`.
pub const TOKEN_ENV: &str = "HOMEBASE_TEST_SCIM_TOKEN";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a missing SCIM server fails the test (CI) or skips it.
pub fn required() -> bool {
    std::env::var("HOMEBASE_REQUIRE_SCIM").is_ok_and(|v| v == "1")
}

/// A SCIM server on a free 127.0.0.1 port; stopped (by its PID) on drop.
pub struct ScimServer {
    dir: tempfile::TempDir,
    script: &'static str,
    /// Base URL, e.g. `http://127.0.0.1:41234/v2`.
    pub url: String,
    pub token: String,
    pub addr: SocketAddr,
}

impl ScimServer {
    /// Start one, or `None` (with a message) when that is not possible here
    /// and `HOMEBASE_REQUIRE_SCIM` is not `1` — then the test panics.
    pub fn start(args: &[&str]) -> Option<ScimServer> {
        ScimServer::start_with("tests/servers/scim.sh", "scim2-server", args)
    }

    /// A SCIMMY server (npm), announcing filter support or not, with pages
    /// of at most `max_results`.
    pub fn scimmy(filter: bool, max_results: usize) -> Option<ScimServer> {
        let max = max_results.to_string();
        let mode = if filter { "on" } else { "off" };
        ScimServer::start_with(
            "tests/servers/scimmy.sh",
            "the SCIMMY server",
            &[mode, &max],
        )
    }

    fn start_with(script: &'static str, what: &str, args: &[&str]) -> Option<ScimServer> {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = Command::new(repo().join(script))
            .arg("start")
            .arg(dir.path())
            .args(args)
            .output();
        let started = match &output {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = started {
            if required() {
                panic!("HOMEBASE_REQUIRE_SCIM=1 but {what} did not start:\n{why}");
            }
            eprintln!(
                "skipped: {what} is not available ({}); set HOMEBASE_REQUIRE_SCIM=1 to fail instead",
                why.trim()
            );
            return None;
        }
        let read = |name: &str| {
            std::fs::read_to_string(dir.path().join(name))
                .expect(name)
                .trim()
                .to_string()
        };
        let url = read("url");
        let token = read("token");
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/v2")
            .parse()
            .expect("server address");
        Some(ScimServer {
            dir,
            script,
            url,
            token,
            addr,
        })
    }

    /// SIGKILL, as a crash: connections drop mid-request.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("pid")).expect("pid file");
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    /// Up again on the same address and token, with no resources: the
    /// server keeps them in memory only.
    pub fn restart(&self) {
        let out = Command::new(repo().join(self.script))
            .arg("restart")
            .arg(self.dir.path())
            .output()
            .expect("run the server script");
        assert!(
            out.status.success(),
            "restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn api(&self) -> Api {
        Api::new(&self.url, &self.token)
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = Command::new(repo().join(self.script))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// Plain HTTP calls to the SCIM server, independent of homebase's client.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        // reqwest is built without a default TLS provider (homebase passes
        // its own configuration); this client needs one to exist.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            base: base.to_string(),
            token: token.to_string(),
            // A connection per call: a server closing an idle keep-alive
            // connection just as it is reused would fail the check.
            http: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// Call and return (status, JSON body or Null).
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        self.runtime.block_on(async {
            let mut url = reqwest::Url::parse(&format!("{}{path}", self.base)).unwrap();
            for (k, v) in query {
                url.query_pairs_mut().append_pair(k, v);
            }
            let mut request = self
                .http
                .request(method, url)
                .bearer_auth(&self.token)
                .header("Content-Type", "application/scim+json");
            if let Some(body) = body {
                request = request.body(body.to_string());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            (status, json)
        })
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, query, None);
        assert_eq!(status, 200, "GET {path} {query:?}: {body}");
        body
    }

    /// Every resource of `/Users` or `/Groups`, page by page, with the
    /// `totalResults` the server reported.
    pub fn all(&self, path: &str) -> (usize, Vec<Value>) {
        let mut all = Vec::new();
        let mut start = 1;
        loop {
            let page = self.get(
                path,
                &[("startIndex", &start.to_string()), ("count", "500")],
            );
            let total = page["totalResults"].as_u64().unwrap() as usize;
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let got = resources.len();
            all.extend(resources);
            if got == 0 || all.len() >= total {
                return (total, all);
            }
            start += got;
        }
    }

    /// `totalResults` and resources of a filter query.
    pub fn filter(&self, path: &str, filter: &str) -> (usize, Vec<Value>) {
        let page = self.get(path, &[("filter", filter)]);
        (
            page["totalResults"].as_u64().unwrap() as usize,
            page["Resources"].as_array().cloned().unwrap_or_default(),
        )
    }
}

/// A folder with `homebase.yaml` (a `scim` directory target plus the
/// default `wireguard-file` and `csv` targets) and the example inputs.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    token: String,
}

impl Workspace {
    /// `scim_extra` is more YAML for the `scim` target (indented by 4).
    pub fn new(scim_url: &str, token: &str, scim_extra: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        // The examples with their end dates moved out of the way, as for every test.
        std::fs::write(dir.path().join("staff.csv"), super::example_staff_csv()).unwrap();
        std::fs::copy(
            repo().join("examples/inventory.csv"),
            dir.path().join("inventory.csv"),
        )
        .unwrap();
        let config = format!(
            r#"organisation:
  name: Stadtverwaltung Musterstadt
  domain: musterstadt.example
licenses:
  office-suite:
    seats: 1400
  vpn-client:
    seats: 1300
targets:
  directory:
    kind: scim
    url: {scim_url}
    token_env: {TOKEN_ENV}
{scim_extra}
  wg0:
    kind: wireguard-file
    endpoint: vpn.musterstadt.example:51820
    address: 10.20.0.1/16
  stock:
    kind: csv
    stock: inventory.csv
"#
        );
        std::fs::write(dir.path().join("homebase.yaml"), config).unwrap();
        Workspace {
            dir,
            token: token.to_string(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The real binary in this folder: no retry pauses, no colours.
    pub fn homebase(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("homebase").unwrap();
        cmd.current_dir(self.dir.path())
            .env(TOKEN_ENV, &self.token)
            .env("HOMEBASE_RETRY_BASE_MS", "0")
            .env("NO_COLOR", "1")
            .env_remove("HOMEBASE_REQUIRE_SCIM");
        cmd
    }

    /// Append rows to the staff list (CSV lines, already quoted).
    pub fn add_staff(&self, lines: &[&str]) {
        let path = self.path("staff.csv");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    /// Keep only the first `n` persons of the staff list.
    pub fn keep_staff(&self, n: usize) {
        let path = self.path("staff.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().take(n + 1).collect();
        std::fs::write(path, kept.join("\n") + "\n").unwrap();
    }

    pub fn staff(&self) -> Vec<Staff> {
        read_staff(&self.path("staff.csv"))
    }
}

/// One row of a staff list, as the tests check it.
#[derive(Debug, Clone)]
pub struct Staff {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub department: String,
}

pub fn read_staff(path: &Path) -> Vec<Staff> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| {
            let row = row.unwrap();
            let get = |k: &str| row.get(k).cloned().unwrap_or_default();
            Staff {
                id: get("id"),
                given_name: get("given_name"),
                family_name: get("family_name"),
                email: get("email"),
                department: get("department"),
            }
        })
        .collect()
}
