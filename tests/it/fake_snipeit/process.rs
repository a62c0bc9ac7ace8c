//! The FAKE Snipe-IT as a process of its own, so that the chaos test can
//! SIGKILL it like the real servers and start it again.
//!
//! The process is this test binary run again for one ignored test,
//! [`serve_as_a_process`], told by environment variables where its
//! journal is and which port to take: no second build target, and the fake
//! a test talks to is always the code the test was built with. It binds
//! 127.0.0.1 (a free port the first time, the same port after a restart,
//! as a restarted Snipe-IT keeps its URL), replays its journal and writes
//! the port to a file when it serves. It ends when the test that started it
//! closes its stdin, dead or alive, so no fake outlives its test.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{serve, Journal, Options, State, Version};

const DIR_ENV: &str = "HOMEBASE_FAKE_SNIPEIT_DIR";
const PORT_ENV: &str = "HOMEBASE_FAKE_SNIPEIT_PORT";
const TOKEN_ENV: &str = "HOMEBASE_FAKE_SNIPEIT_TOKEN";
const LIMIT_ENV: &str = "HOMEBASE_FAKE_SNIPEIT_LIMIT";
const WINDOW_ENV: &str = "HOMEBASE_FAKE_SNIPEIT_WINDOW_MS";
const VERSION_ENV: &str = "HOMEBASE_FAKE_SNIPEIT_VERSION";
/// The test below, as libtest names it.
const SERVE_TEST: &str = "fake_snipeit::process::serve_as_a_process";
pub(super) const JOURNAL: &str = "snipeit.journal";

/// The options as the process reads them from its environment.
pub(super) fn env_of(options: &Options) -> Vec<(&'static str, String)> {
    vec![
        (TOKEN_ENV, options.token.clone()),
        (LIMIT_ENV, options.limit.to_string()),
        (WINDOW_ENV, options.window.as_millis().to_string()),
        (
            VERSION_ENV,
            match options.version {
                Version::V7 => "v7",
                Version::V8_2 => "v8.2",
            }
            .to_string(),
        ),
    ]
}

/// A running (or killed) fake process and what starts it again.
pub(super) struct Process {
    dir: TempDir,
    journal: PathBuf,
    env: Vec<(&'static str, String)>,
    /// 0 until the first start has chosen one.
    port: u16,
    child: Option<Child>,
}

impl Process {
    /// Start the process on the journal `dir/snipeit.journal`.
    pub(super) fn start(dir: TempDir, env: Vec<(&'static str, String)>) -> Process {
        let journal = dir.path().join(JOURNAL);
        let mut process = Process {
            dir,
            journal,
            env,
            port: 0,
            child: None,
        };
        process.restart();
        process
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(super) fn journal(&self) -> &Path {
        &self.journal
    }

    /// SIGKILL: no answer in flight is finished, nothing is flushed.
    pub(super) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it (again) and wait until it serves.
    pub(super) fn restart(&mut self) {
        assert!(self.child.is_none(), "the fake still runs");
        let port_file = self.dir.path().join("port");
        let _ = std::fs::remove_file(&port_file);
        let log = self.dir.path().join("log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("the fake's log");
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args([SERVE_TEST, "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(DIR_ENV, self.dir.path())
            .env(PORT_ENV, self.port.to_string())
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::piped())
            .stdout(out.try_clone().expect("the fake's log"))
            .stderr(out)
            .spawn()
            .expect("start the Snipe-IT fake's process");
        let started = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse::<u16>().expect("a port");
            }
            let said = || std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(status) = child.try_wait().expect("poll the fake") {
                panic!("the Snipe-IT fake ended ({status}):\n{}", said());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the Snipe-IT fake did not start:\n{}",
                said()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        self.port = port;
        self.child = Some(child);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bind the port of a restart, which the killed process may hold a moment.
fn bind(port: u16) -> TcpListener {
    let started = Instant::now();
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return listener,
            Err(e) if port != 0 && started.elapsed() < Duration::from_secs(10) => {
                eprintln!("bind 127.0.0.1:{port}: {e}; again");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
        }
    }
}

#[test]
#[ignore = "the Snipe-IT fake's own process, which FakeSnipeit::process starts"]
fn serve_as_a_process() {
    let Some(dir) = std::env::var_os(DIR_ENV).map(PathBuf::from) else {
        eprintln!("{DIR_ENV} is not set: nothing to serve");
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let number = |name: &str| {
        var(name)
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let options = Options {
        token: var(TOKEN_ENV),
        limit: number(LIMIT_ENV) as u32,
        window: Duration::from_millis(number(WINDOW_ENV)),
        version: match var(VERSION_ENV).as_str() {
            "v8.2" => Version::V8_2,
            _ => Version::V7,
        },
    };
    let mut state = State::new(options);
    let (journal, records) = Journal::open(&dir.join(JOURNAL));
    for record in records {
        state.replay(record);
    }
    state.journal = Some(journal);

    let listener = bind(number(PORT_ENV) as u16);
    let port = listener.local_addr().expect("address").port();
    serve(Arc::new(Mutex::new(state)), listener);
    // Written whole, then renamed: the test never reads half a port.
    let tmp = dir.join("port.tmp");
    std::fs::write(&tmp, port.to_string()).expect("write the port");
    std::fs::rename(&tmp, dir.join("port")).expect("publish the port");

    // Serve until the test that started this process closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// One HTTP/1.1 request to the fake, closed after the answer: its JSON body.
fn call(url: &str, method: &str, path: &str, body: &str) -> serde_json::Value {
    use std::io::Write;
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the fake");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (_, json) = answer.split_once("\r\n\r\n").expect("headers and body");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

const TEST_TOKEN: &str = "fake-process-token";

#[test]
fn a_killed_fake_keeps_its_users_assets_and_checkouts() {
    use super::FakeSnipeit;
    let options = Options {
        token: TEST_TOKEN.into(),
        limit: 1000,
        window: Duration::from_secs(60),
        version: Version::V8_2,
    };
    let mut fake = FakeSnipeit::process(options, |fake| {
        fake.seed_csv(
            "asset_tag,serial,kind,model,status\nNB-1,S1,notebook,T14,available\nNB-2,S2,notebook,T14,available\n",
            |_, _| true,
        );
        fake.seed_user("seeded", Some("P1"));
    });
    let created = call(
        &fake.url,
        "POST",
        "/api/v1/users",
        r#"{"first_name": "Ada", "username": "ada", "employee_num": "P2", "password": "a-long-pass", "password_confirmation": "a-long-pass"}"#,
    );
    assert_eq!(created["status"], "success", "{created}");
    let ada = created["payload"]["id"].as_u64().expect("an id");
    let out = call(
        &fake.url,
        "POST",
        "/api/v1/hardware/2/checkout",
        &format!(r#"{{"checkout_to_type": "user", "assigned_user": {ada}}}"#),
    );
    assert_eq!(out["status"], "success", "{out}");
    let url = fake.url.clone();

    fake.kill();
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err(),
        "a killed fake still answers"
    );
    fake.restart();
    assert_eq!(fake.url, url, "a restarted fake keeps its address");
    let asset = call(&fake.url, "GET", "/api/v1/hardware/2", "");
    assert_eq!(asset["assigned_to"]["username"], "ada", "{asset}");
    let users = call(&fake.url, "GET", "/api/v1/users?limit=10", "");
    assert_eq!(users["total"], 2, "{users}");
    // Ids go on after the restart: a new user is not given Ada's.
    let again = call(
        &fake.url,
        "POST",
        "/api/v1/users",
        r#"{"first_name": "Bo", "username": "bo", "password": "a-long-pass", "password_confirmation": "a-long-pass"}"#,
    );
    assert_eq!(again["payload"]["id"].as_u64(), Some(ada + 1), "{again}");
    assert_eq!(fake.holder_of("NB-2").as_deref(), Some("ada"));
    assert_eq!(fake.holder_of("NB-1"), None);
    assert_eq!(fake.checkouts(), [(2, ada)]);
}
