//! `homebase init DIR`: scaffold a working setup from what homebase ships.

use std::path::PathBuf;

use anyhow::Result;

use crate::apply::fsutil::{private_dir, write_atomic};
use crate::cli::InitArgs;
use crate::error::{ExitCode, Failure};

const STAFF: &str = include_str!("../../examples/staff.csv");
const INVENTORY: &str = include_str!("../../examples/inventory.csv");
/// Ten years: a CA outlives the client certificates it issues.
const CA_DAYS: u32 = 3650;

/// The `openvpn` target `init --ca` adds, using the CA it creates.
const OPENVPN_TARGET: &str =
    "  # OpenVPN with client certificates from the CA in pki/ (homebase init --ca).
  # The server needs: ca pki/ca.crt, tls-crypt out/server/openvpn/tls-crypt.key,
  # crl-verify out/server/openvpn/crl.pem, client-config-dir out/server/openvpn/ccd,
  # topology subnet, server 10.30.0.0 255.255.0.0.
  ovpn:
    kind: openvpn
    remote: vpn.musterstadt.example
    port: 1194
    address: 10.30.0.1/16
    ca_cert: pki/ca.crt
    ca_key: pki/ca.key
";

pub fn run(args: &InitArgs) -> Result<ExitCode> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    // The shipped configuration, pointed at the profiles and templates written beside it.
    let config = crate::config::DEFAULT_CONFIG.replacen(
        "\ntargets:",
        "\n# Profiles and templates of this folder (without these lines: the shipped ones).\nprofiles: profiles\ntemplates: templates\n\ntargets:",
        1,
    );
    let config = if args.ca {
        format!("{config}{OPENVPN_TARGET}")
    } else {
        config
    };
    files.push(("homebase.yaml".into(), config));
    for (name, text) in crate::profile::SHIPPED {
        files.push((
            PathBuf::from("profiles").join(format!("{name}.yaml")),
            (*text).to_string(),
        ));
    }
    for (name, text) in crate::render::SHIPPED {
        files.push((PathBuf::from("templates").join(name), (*text).to_string()));
    }
    files.push((
        "schema/config.schema.json".into(),
        crate::schema::config_schema(),
    ));
    files.push((
        "schema/profile.schema.json".into(),
        crate::schema::profile_schema(),
    ));
    files.push(("examples/staff.csv".into(), STAFF.to_string()));
    files.push(("examples/inventory.csv".into(), INVENTORY.to_string()));

    // The CA: the certificate is public, the key only for its owner.
    let mut ca_files: Vec<(PathBuf, String, u32)> = Vec::new();
    if args.ca {
        let (cert, key) = crate::targets::create_ca(
            "Stadtverwaltung Musterstadt VPN CA",
            args.ca_key_type,
            CA_DAYS,
        )
        .map_err(|why| anyhow::anyhow!("cannot create the CA: {why}"))?;
        ca_files.push(("pki/ca.crt".into(), cert, 0o644));
        ca_files.push(("pki/ca.key".into(), key, 0o600));
    }
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| rel)
        .chain(ca_files.iter().map(|(rel, _, _)| rel))
        .map(|rel| args.dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(Failure::usage_with_hint(
            format!(
                "{} file(s) exist already: {}",
                existing.len(),
                existing.join(", ")
            ),
            "use `homebase init --force` to overwrite them",
        )
        .into());
    }
    for (rel, text) in &files {
        write_atomic(&args.dir.join(rel), text.as_bytes(), None)?;
    }
    for (rel, text, mode) in &ca_files {
        let path = args.dir.join(rel);
        if let Some(dir) = path.parent() {
            private_dir(dir, 0o700)?;
        }
        write_atomic(&path, text.as_bytes(), Some(*mode))?;
    }
    if args.ca {
        eprintln!(
            "created the OpenVPN CA {} (key {}, mode 0600); profiles use it with `vpn: {{kind: openvpn, target: ovpn, pool: 10.30.0.0/17}}`",
            args.dir.join("pki/ca.crt").display(),
            args.dir.join("pki/ca.key").display()
        );
    }
    eprintln!(
        "wrote {} files to {}; next: `cd {} && homebase check examples/staff.csv && homebase plan examples/staff.csv`",
        files.len() + ca_files.len(),
        args.dir.display(),
        args.dir.display()
    );
    Ok(ExitCode::Success)
}
