//! Taking over an OpenVPN CA that easy-rsa built: 200 client certificates
//! issued and 10 revoked by easy-rsa itself, the clients' own `.ovpn` files
//! made as an admin makes them. After `adopt` and `apply`, every one of the
//! 200 still verifies and a real OpenVPN server still lets them in (with the
//! address homebase planned, pushed by a client-config-dir file named by the
//! certificate's common name); the 10 stay revoked in the CRL homebase
//! writes; nobody's certificate is replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{available, crl_serials, free_udp_port, openssl, openvpn_site, Openvpn};
use crate::common::persons_by_id;

const EASYRSA: &str = "/usr/share/easy-rsa/easyrsa";
const HOLDERS: usize = 200;
const REVOKED: usize = 10;

/// `easyrsa` in batch mode with EC keys, its PKI in `dir/pki`.
fn easyrsa(dir: &Path, args: &[&str]) {
    let out = Command::new(EASYRSA)
        .args(args)
        .current_dir(dir)
        .env("EASYRSA_BATCH", "1")
        .env("EASYRSA_PKI", dir.join("pki"))
        .env("EASYRSA_ALGO", "ec")
        .env("EASYRSA_CURVE", "prime256v1")
        .output()
        .expect("run easyrsa");
    assert!(
        out.status.success(),
        "easyrsa {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client config as an admin writes it from the files easy-rsa made for
/// `cn` (kept in `clients/` as the person has them).
fn admin_ovpn(pki: &Path, clients: &Path, cn: &str, port: u16, tls_crypt: &str) -> String {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    format!(
        "client\ndev tun\nproto udp\nremote 127.0.0.1 {port}\nnobind\nremote-cert-tls server\nverb 3\n\
         <ca>\n{}</ca>\n<cert>\n{}</cert>\n<key>\n{}</key>\n<tls-crypt>\n{}</tls-crypt>\n",
        read(pki.join("ca.crt")),
        read(clients.join(format!("{cn}.crt"))),
        read(clients.join(format!("{cn}.key"))),
        tls_crypt
    )
}

/// `openssl verify` of every file in `files` against the CA and a CRL:
/// file → whether it verified.
fn verify(dir: &Path, ca_and_crl: &str, files: &[String]) -> BTreeMap<String, bool> {
    files
        .iter()
        .map(|file| {
            let out = openssl(&["verify", "-crl_check", "-CAfile", ca_and_crl, file], dir);
            (file.clone(), out.status.success())
        })
        .collect()
}

#[test]
fn an_easy_rsa_pki_is_adopted_its_clients_keep_working_and_its_revocations_stay() {
    if !available("the easy-rsa adoption test", true) {
        return;
    }
    if !Path::new(EASYRSA).is_file() {
        assert!(
            std::env::var("HOMEBASE_REQUIRE_OPENVPN").as_deref() != Ok("1"),
            "HOMEBASE_REQUIRE_OPENVPN=1 but {EASYRSA} is missing"
        );
        eprintln!("skipping the easy-rsa adoption test: no {EASYRSA}");
        return;
    }
    let port = free_udp_port();
    let env = openvpn_site(port);
    let started = std::time::Instant::now();

    // The staff: 215 example persons with OpenVPN access. The first 200 hold
    // an easy-rsa certificate (named by username, some by staff id or
    // e-mail, as admins do); the next 5 had theirs revoked; 5 revoked
    // certificates belong to people who left.
    let staff = env.read_string("examples/staff.csv");
    let mut lines = staff.lines();
    let header = lines.next().expect("a header");
    let rows: Vec<&str> = lines.take(260).collect();
    env.write("staff.csv", format!("{header}\n{}\n", rows.join("\n")));
    let plan = env.plan_json(&["staff.csv"]);
    let persons: Vec<(String, serde_json::Value)> = persons_by_id(&plan)
        .into_iter()
        .filter(|(_, p)| {
            p["status"] == "new"
                && p["actions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a["resource"] == "vpn_peer"))
        })
        .take(HOLDERS + REVOKED / 2)
        .collect();
    assert_eq!(
        persons.len(),
        HOLDERS + REVOKED / 2,
        "persons with VPN access"
    );
    let keep: BTreeSet<&str> = persons.iter().map(|(id, _)| id.as_str()).collect();
    let kept_rows: Vec<&str> = rows
        .iter()
        .copied()
        .filter(|row| keep.contains(row.split(',').next().unwrap_or("")))
        .collect();
    env.write("staff.csv", format!("{header}\n{}\n", kept_rows.join("\n")));
    let field = |p: &serde_json::Value, key: &str| -> String {
        p["actions"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["resource"] == "account"))
            .and_then(|a| a[key].as_str())
            .unwrap_or_default()
            .to_string()
    };
    // (staff id, username, planned address, common name)
    let mut holders = Vec::new();
    for (i, (id, p)) in persons.iter().enumerate() {
        let username = p["username"].as_str().expect("a username").to_string();
        let address = p["actions"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["resource"] == "vpn_peer"))
            .and_then(|a| a["address"].as_str())
            .expect("a planned address")
            .to_string();
        let cn = match i % 20 {
            0 => id.clone(),
            1 => field(p, "email"),
            _ => username.clone(),
        };
        holders.push((id.clone(), username, address, cn));
    }
    let leavers: Vec<String> = (1..=REVOKED / 2).map(|i| format!("former{i}")).collect();

    // The PKI, made by easy-rsa; a server certificate; the tls-crypt key.
    let ersa = env.join("easyrsa");
    std::fs::create_dir(&ersa).expect("easyrsa/");
    easyrsa(&ersa, &["init-pki"]);
    easyrsa(
        &ersa,
        &["--req-cn=Musterstadt VPN CA", "build-ca", "nopass"],
    );
    easyrsa(&ersa, &["build-server-full", "server", "nopass"]);
    for cn in holders
        .iter()
        .map(|h| h.3.as_str())
        .chain(leavers.iter().map(String::as_str))
    {
        easyrsa(&ersa, &["build-client-full", cn, "nopass"]);
    }
    // What every person has: their certificate and key (easy-rsa moves
    // revoked ones away; the person's copy stays).
    let pki = ersa.join("pki");
    let clients = env.join("clients");
    std::fs::create_dir(&clients).expect("clients/");
    let all_names: Vec<String> = holders
        .iter()
        .map(|h| h.3.clone())
        .chain(leavers.iter().cloned())
        .collect();
    for cn in &all_names {
        for (from, to) in [
            (format!("issued/{cn}.crt"), format!("{cn}.crt")),
            (format!("private/{cn}.key"), format!("{cn}.key")),
        ] {
            std::fs::copy(pki.join(&from), clients.join(&to)).expect(&from);
        }
    }
    let serial_of = |cn: &str| -> String {
        let out = openssl(
            &["x509", "-noout", "-serial", "-in", &format!("{cn}.crt")],
            &clients,
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("serial=")
            .to_lowercase()
    };
    let revoked_names: Vec<String> = holders[HOLDERS..]
        .iter()
        .map(|h| h.3.clone())
        .chain(leavers.iter().cloned())
        .collect();
    for cn in &revoked_names {
        easyrsa(&ersa, &["revoke", cn, "keyCompromise"]);
    }
    easyrsa(&ersa, &["gen-crl"]);
    let revoked_serials: BTreeSet<String> = revoked_names.iter().map(|cn| serial_of(cn)).collect();
    assert_eq!(revoked_serials.len(), REVOKED);
    eprintln!("easy-rsa made the PKI in {:?}", started.elapsed());
    let tls = Command::new("openvpn")
        .args(["--genkey", "secret", "ta.key"])
        .current_dir(&ersa)
        .output()
        .expect("openvpn --genkey");
    assert!(tls.status.success(), "openvpn --genkey");
    let tls_crypt = std::fs::read_to_string(ersa.join("ta.key")).expect("ta.key");

    // homebase on easy-rsa's CA and the existing tls-crypt key.
    let config = env.read_string("homebase.yaml");
    let ca_lines = "    ca_cert: pki/ca.crt\n    ca_key: pki/ca.key\n";
    assert!(
        config.contains(ca_lines),
        "init --ca changed: adapt this test"
    );
    env.write(
        "homebase.yaml",
        config.replace(
            ca_lines,
            "    ca_cert: easyrsa/pki/ca.crt\n    ca_key: easyrsa/pki/private/ca.key\n    tls_crypt: ../easyrsa/ta.key\n",
        ),
    );

    // Adopt: a dry run says what, `--yes` records it.
    let dry = env.run_ok(&["adopt", "--all", "staff.csv", "--no-progress"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains(&format!(
            "adopt:        {HOLDERS} ({HOLDERS} by common name"
        )),
        "adopt dry run:\n{text}"
    );
    // Foreign: the server's own certificate only (the leavers' are revoked).
    assert!(
        text.contains(&format!("{} valid certificates in", HOLDERS + 1))
            && text.contains("foreign:      1 (kept valid"),
        "adopt dry run:\n{text}"
    );
    env.run_ok(&["adopt", "--all", "staff.csv", "--yes", "--no-progress"]);
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
    assert_eq!(
        std::fs::read_to_string(ersa.join("ta.key")).expect("ta.key"),
        tls_crypt,
        "the existing tls-crypt key was replaced"
    );
    eprintln!("adopt, apply and plan done at {:?}", started.elapsed());

    // Nobody's certificate was replaced: the adopted bundles carry none (the
    // person keeps their own), the five revoked persons got new ones.
    for (id, username, _, _) in &holders[..HOLDERS] {
        let ovpn = env.read_string(format!("out/{username}/openvpn.ovpn"));
        assert!(
            !ovpn.contains("<cert>\n") && !ovpn.contains("<key>\n"),
            "{id}: the bundle issues a new certificate"
        );
        assert!(
            ovpn.contains("keep the certificate and key"),
            "{id}: {ovpn}"
        );
    }
    for (id, username, _, _) in &holders[HOLDERS..] {
        let ovpn = env.read_string(format!("out/{username}/openvpn.ovpn"));
        assert!(
            ovpn.contains("<cert>"),
            "{id}: revoked, so a new certificate"
        );
    }

    // The CRL homebase writes: easy-rsa's ten revocations, none of the 200.
    let listed: BTreeSet<String> = crl_serials(&env).into_iter().collect();
    assert_eq!(listed, revoked_serials, "the CRL homebase wrote");
    env.write(
        "ca+crl.pem",
        format!(
            "{}{}",
            std::fs::read_to_string(pki.join("ca.crt")).expect("ca.crt"),
            env.read_string("out/server/openvpn/crl.pem")
        ),
    );
    let files: Vec<String> = all_names
        .iter()
        .map(|cn| clients.join(format!("{cn}.crt")).display().to_string())
        .collect();
    let verified = verify(env.path(), "ca+crl.pem", &files);
    let (good, bad): (Vec<_>, Vec<_>) = files.iter().partition(|f| verified[*f]);
    assert_eq!(good.len(), HOLDERS, "certificates that verify with the CRL");
    assert_eq!(bad.len(), REVOKED, "certificates the CRL revokes");

    // A real server with homebase's CRL and client-config-dir: adopted
    // clients with their own configs connect and get the planned address
    // (also where the common name is a staff id or an e-mail); a revoked one
    // is refused.
    let server_dir = env.join("out/server/openvpn");
    let server = super::Server {
        ca: pki.join("ca.crt").display().to_string(),
        cert: pki.join("issued/server.crt").display().to_string(),
        key: pki.join("private/server.key").display().to_string(),
        tls_crypt: ersa.join("ta.key").display().to_string(),
    };
    let mut server = server.start(port, &server_dir);
    for (id, _, address, cn) in [&holders[0], &holders[1], &holders[7]] {
        let file = format!("{id}.ovpn");
        std::fs::write(
            clients.join(&file),
            admin_ovpn(&pki, &clients, cn, port, &tls_crypt),
        )
        .expect("write ovpn");
        let mut client = Openvpn::client(&file, &clients);
        let done = client.wait_for(
            &["Initialization Sequence Completed"],
            Duration::from_secs(15),
        );
        if done.is_none() {
            // Collect what the server said about it.
            server.wait_for(&["\0"], Duration::from_secs(2));
        }
        assert!(
            done.is_some(),
            "{id} ({cn}) cannot connect with their own config:\n{}\n--- server\n{}",
            client.tail(),
            server.tail()
        );
        let pushed = client.push_reply();
        assert!(
            pushed.contains(&format!("ifconfig {address} 255.255.0.0")),
            "{id} ({cn}): pushed {pushed:?}, planned {address}"
        );
    }
    let revoked_cn = &holders[HOLDERS].3;
    std::fs::write(
        clients.join("revoked.ovpn"),
        admin_ovpn(&pki, &clients, revoked_cn, port, &tls_crypt),
    )
    .expect("write ovpn");
    let mut refused = Openvpn::client("revoked.ovpn", &clients);
    assert!(
        refused
            .wait_for(
                &["Initialization Sequence Completed"],
                Duration::from_secs(8)
            )
            .is_none(),
        "{revoked_cn}: a certificate easy-rsa revoked still connects"
    );
    let named = server.log.iter().any(|l| l.contains("certificate revoked"))
        || server
            .wait_for(&["certificate revoked"], Duration::from_secs(5))
            .is_some();
    assert!(
        named,
        "the server log does not name the revocation:\n{}",
        server.tail()
    );
}
