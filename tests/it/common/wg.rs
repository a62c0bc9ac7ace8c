//! Real WireGuard for the tests: network namespaces, veth pairs and
//! `wireguard-go` interfaces, each torn down by a guard (also on panic).
//! Every name starts with `hbwg` and carries the test process's id.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether root and the tools are here; if not, skip with a note — or fail
/// when `HOMEBASE_REQUIRE_WG=1` (CI has them).
pub fn available(test: &str) -> bool {
    super::tools_available(
        test,
        "HOMEBASE_REQUIRE_WG",
        true,
        &[
            ("wg", "--version"),
            ("wireguard-go", "--version"),
            ("ip", "-V"),
            ("ping", "-V"),
        ],
    )
}

/// A short unique suffix for names (interface names have 15 characters).
pub fn suffix() -> String {
    format!("{}", std::process::id() % 100_000)
}

/// Run a command that must succeed; its stdout. `input` goes to stdin.
pub fn sh(program: &str, args: &[&str], input: Option<&str>) -> String {
    let (ok, out, err) = try_sh(program, args, input);
    assert!(ok, "`{program} {}` failed: {err}", args.join(" "));
    out
}

/// Run a command; (success, stdout, stderr).
pub fn try_sh(program: &str, args: &[&str], input: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ip netns exec NS ARGS...`, which must succeed.
pub fn in_ns(ns: &str, args: &[&str], input: Option<&str>) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    sh("ip", &all, input)
}

/// A network namespace, deleted on drop (with the veth ends inside it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        // A leftover of a killed run with the same pid would make `add` fail.
        let _ = try_sh("ip", &["netns", "del", &name], None);
        sh("ip", &["netns", "add", &name], None);
        sh("ip", &["-n", &name, "link", "set", "lo", "up"], None);
        Netns { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = try_sh("ip", &["netns", "del", &self.name], None);
    }
}

/// A `wireguard-go` interface inside a namespace; stopped by its PID on drop.
pub struct WgGo {
    pub ns: String,
    pub name: String,
    child: Child,
}

impl WgGo {
    pub fn start(ns: &Netns, name: &str) -> WgGo {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "wireguard-go", name])
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wireguard-go");
        let mut wg = WgGo {
            ns: ns.name.clone(),
            name: name.to_string(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (up, _, _) = try_sh(
                "ip",
                &["netns", "exec", &wg.ns, "wg", "show", &wg.name],
                None,
            );
            if up {
                break;
            }
            let exited = wg.child.try_wait().expect("poll wireguard-go");
            assert!(exited.is_none(), "wireguard-go {name} exited: {exited:?}");
            assert!(
                Instant::now() < deadline,
                "wireguard-go {name} did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        wg
    }

    /// `wg ARGS` on this interface's namespace.
    pub fn wg(&self, args: &[&str], input: Option<&str>) -> String {
        let mut all = vec!["wg"];
        all.extend_from_slice(args);
        in_ns(&self.ns, &all, input)
    }

    /// Give the interface an address, bring it up.
    pub fn up(&self, address: &str) {
        sh(
            "ip",
            &["-n", &self.ns, "addr", "add", address, "dev", &self.name],
            None,
        );
        sh(
            "ip",
            &["-n", &self.ns, "link", "set", &self.name, "up"],
            None,
        );
    }

    /// Load a `wg setconf` file (written to a temp file: no process substitution).
    pub fn setconf(&self, conf: &str) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), conf).expect("write conf");
        self.wg(
            &["setconf", &self.name, &file.path().display().to_string()],
            None,
        );
    }
}

impl Drop for WgGo {
    fn drop(&mut self) {
        // SIGTERM lets wireguard-go remove its interface and socket.
        let pid = self.child.id().to_string();
        let _ = try_sh("kill", &["-TERM", &pid], None);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = try_sh("ip", &["-n", &self.ns, "link", "del", &self.name], None);
    }
}

/// A veth pair between two namespaces, with an address on each end
/// (`a_addr`/`b_addr` with prefix). Goes away with the namespaces.
pub fn veth(a: &Netns, a_name: &str, a_addr: &str, b: &Netns, b_name: &str, b_addr: &str) {
    sh(
        "ip",
        &[
            "link", "add", a_name, "type", "veth", "peer", "name", b_name,
        ],
        None,
    );
    sh("ip", &["link", "set", a_name, "netns", &a.name], None);
    sh("ip", &["link", "set", b_name, "netns", &b.name], None);
    for (ns, name, addr) in [(a, a_name, a_addr), (b, b_name, b_addr)] {
        sh(
            "ip",
            &["-n", &ns.name, "addr", "add", addr, "dev", name],
            None,
        );
        sh("ip", &["-n", &ns.name, "link", "set", name, "up"], None);
    }
}

/// What `wg-quick strip` does for `wg setconf`: drop the wg-quick-only lines
/// (Address, DNS, MTU, …), and set (or drop) the Endpoint.
pub fn strip(config: &str, endpoint: Option<&str>) -> String {
    let mut out = String::new();
    for line in config.lines() {
        let key = line
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match key.as_str() {
            "address" | "dns" | "mtu" | "table" | "preup" | "postup" | "predown" | "postdown"
            | "saveconfig" => {}
            "endpoint" => {
                if let Some(endpoint) = endpoint {
                    out.push_str(&format!("Endpoint = {endpoint}\n"));
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// `wg show dump` peer lines as public key → (preshared key or "(none)", allowed IPs).
pub fn dump_peers(dump: &str) -> std::collections::BTreeMap<String, (String, String)> {
    dump.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 8).then(|| (f[0].to_string(), (f[1].to_string(), f[3].to_string())))
        })
        .collect()
}

/// `ping -c1 -W2` through the namespace; up to `tries` times.
pub fn pings(ns: &str, address: &str, tries: usize) -> bool {
    (0..tries).any(|_| {
        try_sh(
            "ip",
            &["netns", "exec", ns, "ping", "-c1", "-W2", address],
            None,
        )
        .0
    })
}
