//! The `openvpn` target against the real tools: `openssl verify` for every
//! certificate, `openvpn` itself for every generated `.ovpn`, and a real
//! OpenVPN server on 127.0.0.1 that accepts a provisioned client and refuses
//! it once it is offboarded (CRL).
//!
//! `easyrsa` holds the adoption of an existing easy-rsa PKI.
//!
//! Needs `openssl` and `openvpn`; the server test also root (a tun device).
//! Without them the tests are skipped with a note, unless
//! `HOMEBASE_REQUIRE_OPENVPN=1` (CI), which makes them fail.

use crate::common;

mod easyrsa;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{describe, planned, SecretScanner, TestEnv, STAFF_COUNT};

const APPLY: &[&str] = &["apply", "examples/staff.csv", "--yes", "--no-progress"];

/// Whether the tools (and root, if asked) are here; if not, skip or fail.
fn available(test: &str, need_root: bool) -> bool {
    common::tools_available(
        test,
        "HOMEBASE_REQUIRE_OPENVPN",
        need_root,
        &[("openssl", "version"), ("openvpn", "--version")],
    )
}

/// A site made by `homebase init --ca`, switched to OpenVPN: every profile
/// uses the `ovpn` target (remote 127.0.0.1:`port`) and renders `.ovpn`.
fn openvpn_site(port: u16) -> TestEnv {
    let env = TestEnv::new();
    env.run_ok(&["init", ".", "--ca"]);
    env.copy_examples();
    let config = env.read_string("homebase.yaml");
    let wg0 = "  wg0:\n    kind: wireguard-file\n    endpoint: vpn.musterstadt.example:51820\n    address: 10.20.0.1/16\n";
    assert!(
        config.contains(wg0),
        "the shipped wg0 target changed: adapt this test"
    );
    let remote = "    remote: vpn.musterstadt.example\n    port: 1194\n";
    assert!(config.contains(remote), "init --ca wrote no ovpn target");
    env.write(
        "homebase.yaml",
        config.replace(wg0, "").replace(
            remote,
            &format!("    remote: 127.0.0.1\n    port: {port}\n"),
        ),
    );
    for entry in std::fs::read_dir(env.join("profiles")).expect("profiles/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("profile");
        let text = text
            .replace("kind: wireguard", "kind: openvpn")
            .replace("target: wg0", "target: ovpn")
            .replace("pool: 10.20.", "pool: 10.30.")
            .replace("dns: [10.20.0.1]", "dns: [10.30.0.1]")
            .replace("wireguard.conf.j2", "openvpn.ovpn.j2");
        std::fs::write(&path, text).expect("write profile");
    }
    env
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// The PEM block between `<tag>` and `</tag>` of an inline config.
fn inline_block(ovpn: &str, tag: &str) -> String {
    let open = format!("<{tag}>\n");
    let close = format!("</{tag}>");
    let start = ovpn
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> block"))
        + open.len();
    let end = ovpn[start..]
        .find(&close)
        .unwrap_or_else(|| panic!("no </{tag}>"))
        + start;
    ovpn[start..end].to_string()
}

/// The base64 lines of a PEM block (what a leak would contain).
fn pem_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect()
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

/// An openvpn process whose log lines arrive on a channel; killed (by its
/// PID) on drop.
struct Openvpn {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Openvpn {
    fn start(args: &[&str], dir: &Path) -> Openvpn {
        let mut child = Command::new("openvpn")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openvpn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Openvpn {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// A client from the config file `config` in `dir`, without a tunnel
    /// device or routes (no root needed for the client side).
    fn client(config: &str, dir: &Path) -> Openvpn {
        let args = [
            "--config",
            config,
            "--dev",
            "null",
            "--ifconfig-noexec",
            "--route-noexec",
            "--verb",
            "3",
        ];
        Openvpn::start(&args, dir)
    }

    /// Wait for a line containing one of `wanted`; `None` when the process
    /// ended or `timeout` passed first.
    fn wait_for(&mut self, wanted: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if wanted.iter().any(|w| line.contains(w)) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The server's `PUSH_REPLY` line as the client logged it ("" if none).
    fn push_reply(&self) -> String {
        self.log
            .iter()
            .find(|l| l.contains("PUSH_REPLY"))
            .cloned()
            .unwrap_or_default()
    }

    fn tail(&self) -> String {
        let start = self.log.len().saturating_sub(40);
        self.log[start..].join("\n")
    }
}

impl Drop for Openvpn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real OpenVPN server on 127.0.0.1 (needs root for its tun device): the
/// CA, its own certificate, the tls-crypt key; `crl.pem` and `ccd/` are read
/// from `dir`, where homebase writes them.
struct Server {
    ca: String,
    cert: String,
    key: String,
    tls_crypt: String,
}

impl Server {
    /// Start it and wait until it serves.
    fn start(&self, port: u16, dir: &Path) -> Openvpn {
        let device = format!("hbovpn{}{port}", std::process::id() % 1000);
        let port_text = port.to_string();
        let mut server = Openvpn::start(
            &[
                "--mode",
                "server",
                "--tls-server",
                "--topology",
                "subnet",
                "--dev",
                &device,
                "--dev-type",
                "tun",
                "--ifconfig",
                "10.30.0.1",
                "255.255.0.0",
                "--ifconfig-noexec",
                "--route-noexec",
                "--push",
                "topology subnet",
                "--proto",
                "udp",
                "--local",
                "127.0.0.1",
                "--port",
                &port_text,
                "--ca",
                &self.ca,
                "--cert",
                &self.cert,
                "--key",
                &self.key,
                "--dh",
                "none",
                "--tls-crypt",
                &self.tls_crypt,
                "--crl-verify",
                "crl.pem",
                "--client-config-dir",
                "ccd",
                "--remote-cert-tls",
                "client",
                "--verb",
                "3",
            ],
            dir,
        );
        assert!(
            server
                .wait_for(
                    &["Initialization Sequence Completed"],
                    Duration::from_secs(20)
                )
                .is_some(),
            "the OpenVPN server did not start:\n{}",
            server.tail()
        );
        server
    }
}

/// What `openvpn --config X --dev null` says about a client config: `Ok` once
/// it has loaded every option and inline key and opened its socket (the
/// last start-up step before talking to the server), `Err(log)` if it exits
/// before (bad option, unreadable PEM, key not matching the certificate, bad
/// tls-crypt key …). openvpn has no parse-only mode; this is the next best.
fn openvpn_accepts(config: &Path) -> Result<(), String> {
    let dir = config.parent().expect("a folder");
    let name = config
        .file_name()
        .expect("a file name")
        .to_str()
        .expect("UTF-8");
    let mut vpn = Openvpn::client(name, dir);
    match vpn.wait_for(&["link remote:"], Duration::from_secs(10)) {
        Some(_) => Ok(()),
        None => Err(vpn.tail()),
    }
}

#[test]
fn provisions_the_example_staff_with_certificates_that_verify_and_configs_openvpn_loads() {
    if !available("the OpenVPN provisioning test", false) {
        return;
    }
    let env = openvpn_site(free_udp_port());
    let key_mode = std::fs::metadata(env.join("pki/ca.key"))
        .expect("pki/ca.key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "init --ca: CA key mode");
    let plan = env.plan_json(&["examples/staff.csv"]);
    let promised = planned(&plan);
    let started = Instant::now();
    let applied = env.run_ok(APPLY);
    eprintln!(
        "apply of {STAFF_COUNT} OpenVPN persons: {:?}",
        started.elapsed()
    );
    // A second run plans nothing, and a plan after it has no changes.
    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);

    // Every bundle: an inline .ovpn, 0600, whose certificate names the person.
    let bundles = env.bundle_dirs();
    assert_eq!(bundles.len(), STAFF_COUNT, "bundle folders");
    let certs = env.join("certs");
    std::fs::create_dir(&certs).expect("certs/");
    let mut keys = Vec::new();
    let mut cert_files = Vec::new();
    for username in &bundles {
        let rel = format!("out/{username}/openvpn.ovpn");
        let mode = std::fs::metadata(env.join(&rel))
            .expect("ovpn")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{rel}: mode");
        let ovpn = env.read_string(&rel);
        assert!(ovpn.contains("\nremote 127.0.0.1 "), "{rel}: remote");
        for tag in ["ca", "cert", "key", "tls-crypt"] {
            assert!(ovpn.contains(&format!("<{tag}>\n")), "{rel}: no <{tag}>");
        }
        keys.extend(pem_lines(&inline_block(&ovpn, "key")));
        let file = format!("{username}.pem");
        std::fs::write(certs.join(&file), inline_block(&ovpn, "cert")).expect("write cert");
        cert_files.push(file);
    }

    // `openssl verify` against the CA, all certificates in one run.
    let ca = env.join("pki/ca.crt").display().to_string();
    let mut args = vec!["verify", "-CAfile", &ca, "-purpose", "sslclient"];
    args.extend(cert_files.iter().map(String::as_str));
    let out = openssl(&args, &certs);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openssl verify: {}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.ends_with(": OK")).count(),
        STAFF_COUNT
    );

    // Subject and validity of a sample: CN = username, end = the person's end date.
    let by_username: BTreeMap<&str, &str> = promised
        .iter()
        .map(|(id, p)| (p.username.as_str(), id.as_str()))
        .collect();
    let persons = common::persons_by_id(&plan);
    for username in bundles.iter().step_by(97) {
        let out = openssl(
            &[
                "x509",
                "-noout",
                "-subject",
                "-enddate",
                "-nameopt",
                "RFC2253",
                "-in",
                &format!("{username}.pem"),
            ],
            &certs,
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.contains(&format!("CN={username}")),
            "{username}: {text}"
        );
        let id = by_username[username.as_str()];
        let expires = persons[id]["expires"].as_str().expect("an end date");
        let ca_end = openssl(&["x509", "-noout", "-enddate", "-in", &ca], &certs);
        let ca_end = String::from_utf8_lossy(&ca_end.stdout).to_string();
        // Capped by the CA's own end (the shifted test dates lie a century ahead).
        let day = chrono::NaiveDate::parse_from_str(expires, "%Y-%m-%d").expect("date");
        let ca_last = chrono::NaiveDateTime::parse_from_str(
            ca_end
                .trim()
                .trim_start_matches("notAfter=")
                .trim_end_matches(" GMT"),
            "%b %e %H:%M:%S %Y",
        )
        .unwrap_or_else(|e| panic!("the CA's end {ca_end}: {e}"));
        if day < ca_last.date() {
            let want = format!(
                "notAfter={} 23:59:59 {} GMT",
                day.format("%b %e"),
                day.format("%Y")
            );
            assert!(text.contains(&want), "{username}: {text} (want {want})");
        } else {
            assert!(
                text.contains(ca_end.trim()),
                "{username}: {text} vs CA {ca_end}"
            );
        }
    }

    // The server side: a CRL the CA signed (empty), 0600 tls-crypt key, one
    // client-config-dir file per person pushing the planned address.
    let crl = env.join("out/server/openvpn/crl.pem").display().to_string();
    let out = openssl(&["crl", "-in", &crl, "-CAfile", &ca, "-noout"], &certs);
    assert!(
        out.status.success(),
        "openssl crl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tls =
        std::fs::metadata(env.join("out/server/openvpn/tls-crypt.key")).expect("tls-crypt key");
    assert_eq!(
        tls.permissions().mode() & 0o777,
        0o600,
        "tls-crypt key mode"
    );
    for (id, p) in promised.iter().step_by(50) {
        let ccd = env.read_string(format!("out/server/openvpn/ccd/{}", p.username));
        assert!(
            ccd.contains(&format!("ifconfig-push {} ", p.address)),
            "{id}: {ccd}"
        );
    }

    // No client key, and not the CA key, in the state store, plan, report or output.
    let ca_key = env.read_string("pki/ca.key");
    keys.extend(pem_lines(&ca_key));
    let tls_key = env.read_string("out/server/openvpn/tls-crypt.key");
    keys.extend(
        tls_key
            .lines()
            .filter(|l| l.len() == 32)
            .map(str::to_string),
    );
    let scanner = SecretScanner::new(keys);
    for file in env.files_under(".homebase") {
        scanner.assert_absent(&file.display().to_string(), &env.read(&file));
    }
    scanner.assert_absent("apply stdout", &applied.stdout);
    scanner.assert_absent("apply stderr", &applied.stderr);
    let again = env.run_ok(&["plan", "examples/staff.csv", "--format", "json", "-v"]);
    scanner.assert_absent("plan stdout", &again.stdout);
    scanner.assert_absent("plan stderr", &again.stderr);
    let status = env.run_ok(&["status", "--format", "json"]);
    scanner.assert_absent("status", &status.stdout);

    // openvpn loads every config (its own parser, OpenSSL for the keys).
    let started = Instant::now();
    let mut refused = Vec::new();
    for username in &bundles {
        if let Err(log) = openvpn_accepts(&env.join(format!("out/{username}/openvpn.ovpn"))) {
            refused.push(format!("{username}:\n{log}"));
        }
    }
    eprintln!(
        "openvpn start-up checks of {} configs: {:?}",
        bundles.len(),
        started.elapsed()
    );
    assert!(
        refused.is_empty(),
        "openvpn refused {} config(s):\n{}",
        refused.len(),
        refused[0]
    );

    // And it does notice a broken one: a key that is not the certificate's.
    let (first, second) = {
        let mut it = bundles.iter();
        (it.next().expect("one"), it.next().expect("two"))
    };
    let a = env.read_string(format!("out/{first}/openvpn.ovpn"));
    let b = env.read_string(format!("out/{second}/openvpn.ovpn"));
    let swapped = a.replace(&inline_block(&a, "key"), &inline_block(&b, "key"));
    env.write("swapped/client.ovpn", swapped);
    assert!(
        openvpn_accepts(&env.join("swapped/client.ovpn")).is_err(),
        "openvpn accepted a key that does not match the certificate"
    );
}

#[test]
fn config_mistakes_are_refused_with_file_and_field() {
    let env = openvpn_site(1194);
    env.run_ok(&["check", "examples/staff.csv"]);
    let check = |what: &str, expect: &[&str]| {
        let out = env.run_expect(&["check", "examples/staff.csv"], 2);
        let err = common::stderr(&out);
        for e in expect {
            assert!(err.contains(e), "{what}: {e:?} not in\n{}", describe(&out));
        }
        env.assert_untouched(what);
    };
    let config = env.read_string("homebase.yaml");
    let key = env.read_string("pki/ca.key");

    env.write(
        "homebase.yaml",
        config.replace("ca_cert: pki/ca.crt", "ca_cert: pki/nope.crt"),
    );
    check(
        "missing CA certificate",
        &["targets.ovpn.ca_cert", "pki/nope.crt"],
    );
    env.write("homebase.yaml", &config);

    std::fs::set_permissions(
        env.join("pki/ca.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    check(
        "CA key readable by others",
        &["targets.ovpn.ca_key", "chmod 600"],
    );

    env.write(
        "pki/ca.key",
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
    );
    std::fs::set_permissions(
        env.join("pki/ca.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    check("SEC1 key", &["targets.ovpn.ca_key", "PKCS#8"]);

    env.write(
        "pki/ca.key",
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    );
    check("garbage key", &["targets.ovpn.ca_key", "not a key"]);

    // Another CA's key.
    let other = TestEnv::new();
    other.run_ok(&["init", ".", "--ca"]);
    env.write("pki/ca.key", other.read("pki/ca.key"));
    check("foreign key", &["does not belong to the CA certificate"]);
    env.write("pki/ca.key", &key);
    env.run_ok(&["check", "examples/staff.csv"]);

    env.write(
        "homebase.yaml",
        config.replace("address: 10.30.0.1/16", "address: 10.40.0.1/16"),
    );
    check(
        "pool outside the network",
        &["vpn.pool", "outside the network 10.40.0.0/16"],
    );
    env.write(
        "homebase.yaml",
        config.replace(
            "ca_key: pki/ca.key\n",
            "ca_key: pki/ca.key\n    crl_days: 5\n",
        ),
    );
    check(
        "CRL warning window too long",
        &["targets.ovpn.crl_warn_days"],
    );
}

#[test]
fn a_real_server_accepts_a_provisioned_client_and_refuses_it_after_offboarding() {
    if !available("the OpenVPN server test", true) {
        return;
    }
    let port = free_udp_port();
    let env = openvpn_site(port);
    let plan = env.plan_json(&["examples/staff.csv"]);
    let promised = planned(&plan);
    env.run_ok(APPLY);

    // A server certificate from the same CA, issued with openssl.
    let pki = env.join("pki");
    env.write(
        "pki/server.ext",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    for args in [
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=vpn-test-server",
            "-out",
            "server.csr",
        ][..],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    ] {
        let out = openssl(args, &pki);
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server_dir = env.join("out/server/openvpn");
    let pki_path = |f: &str| pki.join(f).display().to_string();
    let server = Server {
        ca: pki_path("ca.crt"),
        cert: pki_path("server.crt"),
        key: pki_path("server.key"),
        tls_crypt: "tls-crypt.key".into(),
    };
    let mut server = server.start(port, &server_dir);

    let ids: Vec<&String> = promised.keys().collect();
    let (leaver, stayer) = (ids[3].clone(), ids[700].clone());
    let connect = |id: &str| -> (Option<String>, Openvpn) {
        let username = &promised[id].username;
        let mut client = Openvpn::client("openvpn.ovpn", &env.join(format!("out/{username}")));
        let done = client.wait_for(
            &["Initialization Sequence Completed"],
            Duration::from_secs(15),
        );
        (done, client)
    };
    for id in [&leaver, &stayer] {
        let (done, client) = connect(id);
        assert!(
            done.is_some(),
            "{id}: no connection:\n{}\n--- server\n{}",
            client.tail(),
            server.tail()
        );
        // The address the state store holds is the one the server pushed.
        let pushed = client.push_reply();
        let want = format!("ifconfig {} 255.255.0.0", promised[id.as_str()].address);
        assert!(
            pushed.contains(&want),
            "{id}: pushed {pushed:?}, planned {want}"
        );
    }

    // Offboarding revokes: a fresh CRL, and the server refuses the client.
    env.run_ok(&["offboard", &leaver, "--yes", "--no-progress"]);
    let both = env.join("ca+crl.pem");
    std::fs::write(
        &both,
        format!(
            "{}{}",
            env.read_string("pki/ca.crt"),
            env.read_string("out/server/openvpn/crl.pem")
        ),
    )
    .expect("write");
    let leaver_cert = inline_block(
        &env.read_string(format!("out/{}/openvpn.ovpn", promised[&leaver].username)),
        "cert",
    );
    env.write("leaver.pem", leaver_cert);
    let out = openssl(
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "ca+crl.pem",
            "leaver.pem",
        ],
        env.path(),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("revoked"),
        "openssl verify after offboarding: {text}"
    );
    assert!(
        !env.exists(format!(
            "out/server/openvpn/ccd/{}",
            promised[&leaver].username
        )),
        "the leaver's ccd file stays"
    );

    let (done, client) = connect(&leaver);
    assert!(
        done.is_none(),
        "{leaver} still connects after offboarding:\n{}",
        client.tail()
    );
    // Refused for the revocation (OpenSSL's "certificate revoked", error 23),
    // not for anything else.
    let revoked = server.log.iter().any(|l| l.contains("certificate revoked"))
        || server
            .wait_for(&["certificate revoked"], Duration::from_secs(5))
            .is_some();
    assert!(
        revoked,
        "the server log does not name the revocation:\n{}",
        server.tail()
    );
    drop(client);
    let (done, client) = connect(&stayer);
    assert!(
        done.is_some(),
        "{stayer} is refused after someone else's offboarding:\n{}",
        client.tail()
    );
}

/// Serials (lower-case hex, as homebase records them) of a CRL file.
fn crl_serials(env: &TestEnv) -> Vec<String> {
    let out = openssl(
        &[
            "crl",
            "-in",
            "out/server/openvpn/crl.pem",
            "-noout",
            "-text",
        ],
        env.path(),
    );
    assert!(out.status.success(), "openssl crl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|s| s.trim().to_lowercase())
        .collect()
}

/// The serial of a bundle's certificate.
fn bundle_serial(env: &TestEnv, username: &str) -> String {
    let cert = inline_block(
        &env.read_string(format!("out/{username}/openvpn.ovpn")),
        "cert",
    );
    env.write("serial.pem", cert);
    let out = openssl(
        &["x509", "-noout", "-serial", "-in", "serial.pem"],
        env.path(),
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_lowercase()
}

#[test]
fn certificates_and_the_crl_are_reissued_only_when_due() {
    if !available("the OpenVPN renewal test", false) {
        return;
    }
    let env = openvpn_site(1194);
    let (header, rows) = common::example_staff_rows();
    env.write(
        "staff.csv",
        format!("{header}\n{}\n", rows[..20].join("\n")),
    );
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
    let plan = env.plan_json(&["staff.csv"]);
    let people = planned(&plan);
    let (id, first) = people.iter().next().expect("a person");
    let serial = bundle_serial(&env, &first.username);
    let crl_before = env.read("out/server/openvpn/crl.pem");

    // A re-run changes nothing: same certificate, same CRL.
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    assert_eq!(bundle_serial(&env, &first.username), serial);
    assert_eq!(env.read("out/server/openvpn/crl.pem"), crl_before);

    // A CRL that lapses within the warning window: plan warns, apply re-issues.
    let config = env.read_string("homebase.yaml");
    env.write(
        "homebase.yaml",
        config.replace(
            "ca_key: pki/ca.key\n",
            "ca_key: pki/ca.key\n    crl_days: 60\n    crl_warn_days: 45\n",
        ),
    );
    let out = env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 4);
    let text = common::stdout(&out) + &common::stderr(&out);
    assert!(
        text.contains("next update is due"),
        "no CRL warning:\n{text}"
    );
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    assert_ne!(
        env.read("out/server/openvpn/crl.pem"),
        crl_before,
        "CRL not re-issued"
    );
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
    assert_eq!(
        bundle_serial(&env, &first.username),
        serial,
        "a CRL renewal re-issued a certificate"
    );

    // --rotate: a new certificate; the old one is revoked (superseded).
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress", "--rotate"]);
    let rotated = bundle_serial(&env, &first.username);
    assert_ne!(rotated, serial);
    let revoked = crl_serials(&env);
    assert!(
        revoked.contains(&serial),
        "{serial} not in the CRL {revoked:?}"
    );
    assert!(!revoked.contains(&rotated));
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);

    // A new end date: the certificate follows it. Three years from today,
    // inside the CA's ten, on whatever day the suite runs.
    let moved_day = chrono::Local::now().date_naive() + chrono::Days::new(3 * 365);
    let moved_end = moved_day.to_string();
    let moved: Vec<String> = rows[..20]
        .iter()
        .map(|row| {
            if row.starts_with(&format!("{id},")) {
                let mut fields: Vec<&str> = row.split(',').collect();
                let end = header.split(',').position(|c| c == "end").expect("end");
                fields[end] = &moved_end;
                fields.join(",")
            } else {
                row.clone()
            }
        })
        .collect();
    env.write("staff.csv", format!("{header}\n{}\n", moved.join("\n")));
    let plan = env.plan_json(&["staff.csv"]);
    let person = &common::persons_by_id(&plan)[id.as_str()];
    let change = person["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["resource"] == "vpn_peer")
        .expect("a VPN action")
        .to_string();
    assert!(
        change.contains("certificate") && change.contains(&moved_end),
        "{change}"
    );
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    env.write(
        "end.pem",
        inline_block(
            &env.read_string(format!("out/{}/openvpn.ovpn", first.username)),
            "cert",
        ),
    );
    let out = openssl(
        &["x509", "-noout", "-enddate", "-in", "end.pem"],
        env.path(),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        moved_day
            .format("notAfter=%b %e 23:59:59 %Y GMT")
            .to_string()
    );
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
}
