//! The harness of the integration tests: the real `homebase` binary, run in a
//! fresh temporary folder per test, with helpers to look at what it wrote.
//!
//! Every test builds its own [`TestEnv`]; nothing is shared between tests.

pub mod http;
pub mod pg;
pub mod proxy;
pub mod scim;
pub mod wg;
pub use scim::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

/// Persons in `examples/staff.csv`.
pub const STAFF_COUNT: usize = 1200;

/// The day `examples/staff.csv` was exported: the README's demonstration
/// pins `HOMEBASE_TODAY` to it.
pub const EXAMPLES_DAY: &str = "2026-12-04";

/// One temporary working folder and the binary run inside it.
pub struct TestEnv {
    dir: tempfile::TempDir,
    /// Output of spawned runs goes here, outside the working folder, so that
    /// walking the working folder sees only what homebase wrote.
    logs: tempfile::TempDir,
    spawned: std::cell::Cell<usize>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::Builder::new()
                .prefix("homebase-test-")
                .tempdir()
                .expect("create a temp dir"),
            logs: tempfile::Builder::new()
                .prefix("homebase-logs-")
                .tempdir()
                .expect("create a temp dir"),
            spawned: std::cell::Cell::new(0),
        }
    }

    /// The working folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `homebase` in the working folder, with retries undelayed and no colour.
    pub fn command(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("homebase").expect("the homebase binary");
        cmd.current_dir(self.path());
        cmd.env("HOMEBASE_RETRY_BASE_MS", "0")
            .env("NO_COLOR", "1")
            .env_remove("HOMEBASE_UPDATE_SCHEMA")
            // The day is today unless a test pins it itself.
            .env_remove("HOMEBASE_TODAY");
        cmd
    }

    /// The same as a `std` command, for runs that are spawned (and killed).
    pub fn std_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("homebase"));
        cmd.current_dir(self.path())
            .args(args)
            .env("HOMEBASE_RETRY_BASE_MS", "0")
            .env("NO_COLOR", "1")
            .env_remove("HOMEBASE_UPDATE_SCHEMA")
            .env_remove("HOMEBASE_TODAY")
            .stdin(Stdio::null());
        cmd
    }

    /// Run to completion (stdin closed) and return what happened.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .write_stdin("")
            .output()
            .expect("run homebase")
    }

    /// Run and insist on exit code `code`; the output for further checks.
    pub fn run_expect(&self, args: &[&str], code: i32) -> Output {
        let out = self.run(args);
        assert_eq!(
            exit_code(&out),
            code,
            "`homebase {}` exited {}, expected {code}\n{}",
            args.join(" "),
            exit_code(&out),
            describe(&out)
        );
        out
    }

    /// Run and insist on success.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        self.run_expect(args, 0)
    }

    /// Start a run in the background; its stdout and stderr go to files
    /// outside the working folder (read them with [`TestEnv::wait`]).
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        let n = self.spawned.get();
        self.spawned.set(n + 1);
        let stdout = self.logs.path().join(format!("{n}.out"));
        let stderr = self.logs.path().join(format!("{n}.err"));
        let child = self
            .std_command(args)
            .stdout(fs::File::create(&stdout).expect("log file"))
            .stderr(fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("spawn homebase");
        Spawned {
            child,
            stdout,
            stderr,
            args: args.join(" "),
        }
    }

    pub fn write(&self, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent folder");
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> Vec<u8> {
        let path = self.join(rel);
        fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    pub fn read_string(&self, rel: impl AsRef<Path>) -> String {
        let path = self.join(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.join(rel).exists()
    }

    /// Copy the repository's example staff and stock lists into `examples/`,
    /// where the embedded default configuration looks for the stock list.
    ///
    /// The examples are the list as of [`EXAMPLES_DAY`]: two end dates
    /// ("Homeoffice bis") lie before it and several in the two weeks after.
    /// These tests are about scale and consistency, not expiry, and must not
    /// start failing as the calendar moves, so end dates are moved a hundred
    /// years ahead (the column stays filled and parsed). Expiry has its own
    /// tests: relative to today, and the README's demonstration on the
    /// pinned day (`HOMEBASE_TODAY`).
    pub fn copy_examples(&self) {
        self.write("examples/inventory.csv", read_example("inventory.csv"));
        self.write("examples/staff.csv", example_staff_csv());
    }

    /// `plan ARGS --format json`, which must succeed (exit 0, or 4 with
    /// `--detailed-exitcode`), parsed.
    pub fn plan_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["plan"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--format", "json"]);
        let out = self.run(&full);
        let code = exit_code(&out);
        assert!(
            code == 0 || code == 4,
            "`homebase {}` exited {code}\n{}",
            full.join(" "),
            describe(&out)
        );
        let plan = parse_json(&out);
        assert_eq!(plan["schema"], "homebase.plan/v1");
        plan
    }

    /// `status ARGS --format json`, parsed.
    pub fn status_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["status"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--format", "json"]);
        let out = self.run_ok(&full);
        let status = parse_json(&out);
        assert_eq!(status["schema"], "homebase.status/v1");
        status
    }

    /// Every file below `rel` (relative paths from the working folder).
    pub fn files_under(&self, rel: impl AsRef<Path>) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let root = self.join(rel);
        if root.exists() {
            walk(&root, &mut |path, meta| {
                if meta.is_file() || meta.is_symlink() {
                    files.push(
                        path.strip_prefix(self.path())
                            .expect("below the working folder")
                            .to_path_buf(),
                    );
                }
            });
        }
        files.sort();
        files
    }

    /// Every file below `rel` with its size, modification time and a hash of
    /// its content: equal snapshots mean nothing was rewritten.
    pub fn files_snapshot(&self, rel: impl AsRef<Path>) -> BTreeMap<PathBuf, FileInfo> {
        self.files_under(rel)
            .into_iter()
            .map(|rel| {
                let path = self.join(&rel);
                let meta = fs::symlink_metadata(&path).expect("stat");
                let bytes = fs::read(&path).expect("read");
                let info = FileInfo {
                    len: meta.len(),
                    mtime: meta.modified().expect("mtime"),
                    content: content_hash(&bytes),
                };
                (rel, info)
            })
            .collect()
    }

    /// The bundle folders below `out/` (everything but the server folder).
    pub fn bundle_dirs(&self) -> BTreeSet<String> {
        let Ok(entries) = fs::read_dir(self.join("out")) else {
            return BTreeSet::new();
        };
        entries
            .map(|e| e.expect("read out/"))
            .filter(|e| e.file_type().expect("file type").is_dir())
            .map(|e| e.file_name().into_string().expect("UTF-8 folder name"))
            .filter(|name| name != "server")
            .collect()
    }

    /// The `key=value` lines of `out/<username>/.secrets`.
    pub fn secrets(&self, username: &str) -> BTreeMap<String, String> {
        parse_secrets(&self.read_string(format!("out/{username}/.secrets")))
    }

    /// The server file `out/server/wg0.conf`.
    pub fn server_conf(&self) -> ServerConf {
        ServerConf::parse(&self.read_string("out/server/wg0.conf"))
    }

    /// Run a shell command line on a pseudo-terminal (`script`), as a person
    /// at a shell would, and return what the terminal showed.
    pub fn in_terminal(&self, shell: &str) -> String {
        let out = std::process::Command::new("script")
            .args(["-qec", shell, "/dev/null"])
            .current_dir(self.path())
            .env("HOMEBASE_RETRY_BASE_MS", "0")
            .env_remove("NO_COLOR")
            .env_remove("HOMEBASE_TODAY")
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Nothing was written: no state store and no output folder.
    pub fn assert_untouched(&self, context: &str) {
        assert!(
            !self.exists(".homebase"),
            "{context}: .homebase/ exists: {:?}",
            self.files_under(".homebase")
        );
        assert!(
            !self.exists("out"),
            "{context}: out/ exists: {:?}",
            self.files_under("out")
        );
    }
}

/// A background run.
pub struct Spawned {
    pub child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    pub args: String,
}

/// What a finished background run left.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub args: String,
}

impl Finished {
    pub fn describe(&self) -> String {
        format!(
            "`homebase {}` exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

impl Spawned {
    pub fn wait(mut self) -> Finished {
        let status = self.child.wait().expect("wait for homebase");
        Finished {
            code: status.code(),
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
            args: self.args,
        }
    }

    /// SIGKILL (no chance to clean up), then reap.
    pub fn kill(mut self) -> Finished {
        // The run may have finished already; then there is nothing to kill.
        let _ = self.child.kill();
        self.wait()
    }

    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("poll homebase").is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub len: u64,
    pub mtime: SystemTime,
    pub content: u64,
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hash;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Every file below `root` (any folder, not only a [`TestEnv`]'s):
/// path relative to `root` → content.
pub fn file_contents(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, &mut |path, meta| {
            if meta.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .expect("below the root")
                    .to_path_buf();
                out.insert(rel, fs::read(path).expect("read"));
            }
        });
    }
    out
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).expect("stat");
        f(&path, &meta);
        if meta.is_dir() {
            walk(&path, f);
        }
    }
}

/// A file of the repository's `examples/`.
/// Whether `program ARGS` runs and succeeds (a tool is installed).
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `script` (util-linux) is here for the terminal tests; on CI its
/// absence fails the test that asked.
pub fn has_script() -> bool {
    if runs("script", &["--version"]) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "script (util-linux) is missing"
    );
    eprintln!("SKIP: no `script` (util-linux) here");
    false
}

pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether root (when needed) and the `tools` (program, version argument)
/// are here; if not, skip `test` with a note — or fail when the environment
/// variable `require` is 1 (CI has them all).
pub fn tools_available(test: &str, require: &str, need_root: bool, tools: &[(&str, &str)]) -> bool {
    let mut missing = Vec::new();
    if need_root && !is_root() {
        missing.push("root");
    }
    for (tool, arg) in tools {
        if !runs(tool, &[arg]) {
            missing.push(tool);
        }
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var(require).is_ok_and(|v| v == "1") {
        panic!("{require}=1 but missing: {}", missing.join(", "));
    }
    eprintln!("skipping {test}: missing {}", missing.join(", "));
    false
}

/// The number in environment variable `name`, if set and a number.
pub fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A random run's seed: `name` when set (to replay a run), else the clock.
pub fn seed_from_env(name: &str) -> u64 {
    env_number(name).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    })
}

pub fn read_example(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `examples/staff.csv` with end dates a hundred years later (see [`TestEnv::copy_examples`]).
pub fn example_staff_csv() -> String {
    let text = String::from_utf8(read_example("staff.csv")).expect("staff.csv is UTF-8");
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    let columns: Vec<&str> = header.split(',').collect();
    let end = columns
        .iter()
        .position(|c| *c == "end")
        .expect("an end column");
    let mut out = String::with_capacity(text.len());
    out.push_str(header);
    out.push('\n');
    for line in lines {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        assert_eq!(
            fields.len(),
            columns.len(),
            "the examples have no quoted commas: {line}"
        );
        if let Some((year, rest)) = fields[end].split_once('-') {
            let year: u32 = year.parse().expect("an ISO date");
            fields[end] = format!("{}-{rest}", year + 100);
        }
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// The header and the data lines of the (date-shifted) example staff list.
pub fn example_staff_rows() -> (String, Vec<String>) {
    let text = example_staff_csv();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().expect("a header");
    (header, lines.collect())
}

pub fn exit_code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tail(s: &str) -> &str {
    const MAX: usize = 4000;
    if s.len() <= MAX {
        return s;
    }
    let mut start = s.len() - MAX;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        exit_code(out),
        tail(&stdout(out)),
        tail(&stderr(out))
    )
}

/// stdout as one JSON document (logs belong on stderr).
pub fn parse_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{}", describe(out)))
}

/// Persons of a plan or status document by id.
pub fn persons_by_id(doc: &Value) -> BTreeMap<String, Value> {
    doc["persons"]
        .as_array()
        .expect("a persons array")
        .iter()
        .map(|p| (p["id"].as_str().expect("an id").to_string(), p.clone()))
        .collect()
}

/// id → username of a plan or status document.
pub fn usernames(doc: &Value) -> BTreeMap<String, String> {
    persons_by_id(doc)
        .into_iter()
        .map(|(id, p)| (id, p["username"].as_str().expect("a username").to_string()))
        .collect()
}

/// `key=value` lines, comments skipped.
pub fn parse_secrets(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The WireGuard public key of a base64 private key, as `wg pubkey` computes it.
pub fn wg_pubkey(private_b64: &str) -> String {
    let bytes: [u8; 32] = B64
        .decode(private_b64.trim())
        .expect("a base64 private key")
        .try_into()
        .expect("a 32-byte private key");
    let secret = x25519_dalek::StaticSecret::from(bytes);
    B64.encode(x25519_dalek::PublicKey::from(&secret).as_bytes())
}

/// The value of the first `Key = value` line (wg-quick style) in `text`.
pub fn conf_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().to_string())
    })
}

/// What the server file `wg0.conf` says.
#[derive(Debug, Default)]
pub struct ServerConf {
    pub private_key: Option<String>,
    pub peers: Vec<ServerPeer>,
}

#[derive(Debug, Default, Clone)]
pub struct ServerPeer {
    /// From the `# homebase: ID` comment above `[Peer]`.
    pub id: Option<String>,
    /// From the `# user: NAME` comment above `[Peer]`.
    pub user: Option<String>,
    pub public_key: Option<String>,
    pub preshared_key: Option<String>,
    pub allowed_ips: Vec<String>,
}

impl ServerConf {
    pub fn parse(text: &str) -> ServerConf {
        let mut conf = ServerConf::default();
        let mut in_peer = false;
        let mut id = None;
        let mut user = None;
        for line in text.lines().map(str::trim) {
            if let Some(comment) = line.strip_prefix('#') {
                let comment = comment.trim();
                if let Some(v) = comment.strip_prefix("homebase:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = comment.strip_prefix("user:") {
                    user = Some(v.trim().to_string());
                }
                continue;
            }
            if line == "[Peer]" {
                in_peer = true;
                conf.peers.push(ServerPeer {
                    id: id.take(),
                    user: user.take(),
                    ..ServerPeer::default()
                });
                continue;
            }
            if line == "[Interface]" {
                in_peer = false;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim().to_string());
            match (in_peer, key) {
                (false, "PrivateKey") => conf.private_key = Some(value),
                (true, "PublicKey") => {
                    conf.peers.last_mut().expect("a peer").public_key = Some(value)
                }
                (true, "PresharedKey") => {
                    conf.peers.last_mut().expect("a peer").preshared_key = Some(value)
                }
                (true, "AllowedIPs") => conf
                    .peers
                    .last_mut()
                    .expect("a peer")
                    .allowed_ips
                    .extend(value.split(',').map(|s| s.trim().to_string())),
                _ => {}
            }
        }
        conf
    }

    /// Peers by the id they are tagged with; panics on untagged or doubly tagged peers.
    pub fn peers_by_id(&self) -> BTreeMap<String, ServerPeer> {
        let mut map = BTreeMap::new();
        for peer in &self.peers {
            let id = peer
                .id
                .clone()
                .unwrap_or_else(|| panic!("a peer without `# homebase:` tag: {peer:?}"));
            assert!(
                map.insert(id.clone(), peer.clone()).is_none(),
                "two peers tagged {id}"
            );
        }
        map
    }
}

/// What a finished apply gave one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub username: String,
    pub address: String,
    pub asset_tags: Vec<String>,
}

/// Asserts the consistency of a finished apply: `expected` active persons
/// with a peer each, unique keys, addresses and asset tags, and every bundle
/// complete with the keys the server knows. Returns what each person has.
pub fn assert_consistent_end_state(
    env: &TestEnv,
    expected: usize,
) -> BTreeMap<String, Provisioned> {
    let status = env.status_json(&[]);
    let persons = persons_by_id(&status);
    let active: BTreeMap<&String, &Value> = persons
        .iter()
        .filter(|(_, p)| p["withdrawn"] != true)
        .collect();
    assert_eq!(active.len(), expected, "active persons in status");

    let server = env.server_conf();
    let server_key = wg_pubkey(
        server
            .private_key
            .as_deref()
            .expect("the server's PrivateKey"),
    );
    assert_eq!(server.peers.len(), expected, "[Peer] sections in wg0.conf");
    let peers = server.peers_by_id();
    let keys: BTreeSet<&String> = server
        .peers
        .iter()
        .filter_map(|p| p.public_key.as_ref())
        .collect();
    assert_eq!(keys.len(), expected, "unique peer public keys in wg0.conf");
    let addresses: BTreeSet<&String> = server.peers.iter().flat_map(|p| &p.allowed_ips).collect();
    assert_eq!(addresses.len(), expected, "unique AllowedIPs in wg0.conf");

    let mut asset_tags = BTreeSet::new();
    let mut result = BTreeMap::new();
    for (id, person) in &active {
        let username = person["username"].as_str().expect("a username");
        let peer = peers
            .get(*id)
            .unwrap_or_else(|| panic!("no peer for {id} in wg0.conf"));
        assert_eq!(peer.user.as_deref(), Some(username), "`# user:` of {id}");
        let vpn = person["vpn"].as_array().expect("vpn");
        assert_eq!(vpn.len(), 1, "{id}: one VPN peer in status");
        let address = vpn[0]["address"].as_str().expect("an address").to_string();
        assert_eq!(
            peer.allowed_ips,
            vec![format!("{address}/32")],
            "{id}: AllowedIPs vs status"
        );
        let mut tags = Vec::new();
        for device in person["devices"].as_array().expect("devices") {
            let tag = device["asset_tag"]
                .as_str()
                .expect("an asset tag")
                .to_string();
            assert!(
                asset_tags.insert(tag.clone()),
                "asset tag {tag} is assigned twice"
            );
            tags.push(tag);
        }
        tags.sort();
        assert_complete_bundle(env, id, username, peer, &server_key);
        let provisioned = Provisioned {
            username: username.to_string(),
            address,
            asset_tags: tags,
        };
        result.insert((*id).clone(), provisioned);
    }
    result
}

/// The files every bundle of the default profiles has.
pub const BUNDLE_FILES: &[&str] = &[
    ".secrets",
    "wireguard.conf",
    "wireguard-qr.png",
    "welcome.md",
    "welcome.html",
    "handover.html",
];

/// A bundle is complete and its keys are those the server knows.
pub fn assert_complete_bundle(
    env: &TestEnv,
    id: &str,
    username: &str,
    peer: &ServerPeer,
    server_public_key: &str,
) {
    for file in BUNDLE_FILES {
        assert!(
            env.exists(format!("out/{username}/{file}")),
            "{id}: out/{username}/{file} is missing"
        );
    }
    let secrets = env.secrets(username);
    let private = secrets
        .get("wireguard_private_key")
        .unwrap_or_else(|| panic!("{id}: no wireguard_private_key in .secrets"));
    assert!(
        secrets
            .get("initial_password")
            .is_some_and(|p| !p.is_empty()),
        "{id}: no initial_password in .secrets"
    );
    let public = wg_pubkey(private);
    assert_eq!(
        peer.public_key.as_deref(),
        Some(public.as_str()),
        "{id}: server peer key vs .secrets"
    );
    let client = env.read_string(format!("out/{username}/wireguard.conf"));
    assert_eq!(
        conf_value(&client, "PrivateKey").as_deref(),
        Some(private.as_str()),
        "{id}: wireguard.conf PrivateKey vs .secrets"
    );
    // The client's [Peer] is the server.
    let peer_section = client
        .split("[Peer]")
        .nth(1)
        .unwrap_or_else(|| panic!("{id}: no [Peer] in wireguard.conf"));
    assert_eq!(
        conf_value(peer_section, "PublicKey").as_deref(),
        Some(server_public_key),
        "{id}: server key in wireguard.conf"
    );
    assert_eq!(
        conf_value(peer_section, "PresharedKey"),
        peer.preshared_key,
        "{id}: PresharedKey of the client and the server differ"
    );
    if let Some(psk) = &peer.preshared_key {
        assert_eq!(
            secrets.get("wireguard_preshared_key"),
            Some(psk),
            "{id}: PresharedKey vs .secrets"
        );
    }
    let address = conf_value(&client, "Address")
        .unwrap_or_else(|| panic!("{id}: no Address in wireguard.conf"));
    assert_eq!(
        vec![address],
        peer.allowed_ips,
        "{id}: client Address vs server AllowedIPs"
    );
}

/// Finds any of many secrets in large haystacks quickly: candidates by their
/// first eight bytes, then an exact comparison.
pub struct SecretScanner {
    secrets: Vec<String>,
    by_prefix: HashMap<u64, Vec<usize>, BuildHasherDefault<PrefixHasher>>,
}

/// The prefixes are random already; mixing them once is hash enough.
#[derive(Default)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl SecretScanner {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> SecretScanner {
        let secrets: Vec<String> = secrets.into_iter().collect();
        let mut by_prefix: HashMap<u64, Vec<usize>, BuildHasherDefault<PrefixHasher>> =
            HashMap::default();
        for (i, s) in secrets.iter().enumerate() {
            assert!(s.len() >= 8, "secrets this short would match by chance");
            by_prefix
                .entry(prefix(s.as_bytes(), 0))
                .or_default()
                .push(i);
        }
        SecretScanner { secrets, by_prefix }
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// The first secret that occurs in `haystack`.
    pub fn find(&self, haystack: &[u8]) -> Option<&str> {
        if haystack.len() < 8 {
            return None;
        }
        for i in 0..=haystack.len() - 8 {
            if let Some(candidates) = self.by_prefix.get(&prefix(haystack, i)) {
                for &c in candidates {
                    let s = self.secrets[c].as_bytes();
                    if haystack[i..].starts_with(s) {
                        return Some(&self.secrets[c]);
                    }
                }
            }
        }
        None
    }

    /// Panics, naming `what`, if any secret occurs in `haystack`.
    pub fn assert_absent(&self, what: &str, haystack: &[u8]) {
        if let Some(secret) = self.find(haystack) {
            panic!("a secret ({}…) appears in {what}", &secret[..4]);
        }
    }
}

fn prefix(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// What a fresh plan promises each person: username, address, asset tags.
pub fn planned(plan: &Value) -> BTreeMap<String, Provisioned> {
    persons_by_id(plan)
        .into_iter()
        .map(|(id, p)| {
            let actions = p["actions"].as_array().expect("actions");
            let address = actions
                .iter()
                .find(|a| a["resource"] == "vpn_peer")
                .and_then(|a| a["address"].as_str())
                .unwrap_or_default()
                .to_string();
            let mut asset_tags: Vec<String> = actions
                .iter()
                .filter(|a| a["resource"] == "device" && a["op"] != "remove")
                .map(|a| a["asset_tag"].as_str().expect("an asset tag").to_string())
                .collect();
            asset_tags.sort();
            let provisioned = Provisioned {
                username: p["username"].as_str().expect("a username").to_string(),
                address,
                asset_tags,
            };
            (id, provisioned)
        })
        .collect()
}

/// Every secret of every bundle below `out/`: (passwords, private keys, preshared keys).
pub fn all_secrets(env: &TestEnv) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut passwords, mut private, mut preshared) = (Vec::new(), Vec::new(), Vec::new());
    for username in env.bundle_dirs() {
        let secrets = env.secrets(&username);
        for (key, value) in secrets {
            match key.as_str() {
                "initial_password" => passwords.push(value),
                "wireguard_private_key" => private.push(value),
                "wireguard_preshared_key" => preshared.push(value),
                "openvpn_key" => private.push(value),
                "openvpn_cert" => {}
                other => panic!("out/{username}/.secrets: unknown key {other}"),
            }
        }
    }
    (passwords, private, preshared)
}

/// splitmix64: a few lines, and the same rounds on every machine for a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}
