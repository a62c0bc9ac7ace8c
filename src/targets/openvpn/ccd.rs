//! The server's `client-config-dir`: one file per client, named by the
//! certificate's common name (the username, or for an adopted easy-rsa
//! certificate the name easy-rsa signed), that pushes the address the
//! state store holds. The server needs `topology subnet` and
//! `client-config-dir` pointing here; then the address in the plan is the
//! address the client gets.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use ipnet::IpNet;

use crate::apply::fsutil::write_if_changed;

/// The first line of every file homebase manages here; others are left alone.
const MARK: &str = "# homebase:";

/// The file for one client: `ifconfig-push` (IPv4) or `ifconfig-ipv6-push`.
pub fn render(person_id: &str, address: IpAddr, server: IpNet) -> String {
    let id: String = person_id
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let push = match (address, server) {
        (IpAddr::V4(addr), IpNet::V4(net)) => format!("ifconfig-push {addr} {}", net.netmask()),
        (addr, net) => format!(
            "ifconfig-ipv6-push {addr}/{} {}",
            net.prefix_len(),
            net.addr()
        ),
    };
    format!("{MARK} {id}\n{push}\n")
}

/// Whether a common name can name a file in the folder (and nothing outside it).
pub fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

/// How many of the expected files (username → content) are missing or different.
pub fn missing(dir: &Path, expected: &BTreeMap<String, String>) -> usize {
    expected
        .iter()
        .filter(|(name, text)| {
            std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str())
        })
        .count()
}

/// Write the expected files (untouched when equal) and remove homebase's
/// files of clients that no longer have access.
pub fn sync(dir: &Path, expected: &BTreeMap<String, String>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in expected {
        // Not secret, and read by the server after it dropped privileges.
        write_if_changed(&dir.join(name), text.as_bytes(), Some(0o644))?;
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if expected.contains_key(&name) || !entry.file_type()?.is_file() {
            continue;
        }
        let ours = std::fs::read_to_string(entry.path()).is_ok_and(|t| t.starts_with(MARK));
        if ours {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The files homebase wrote here: (file name, the staff id of its first
/// line). What `adopt` rebuilds homebase's own clients from after a lost
/// state store; foreign files are not listed.
pub fn own_files(dir: &Path) -> Result<Vec<(String, String)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let id = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix(MARK))
            .map(str::trim);
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                id.to_string(),
            ));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_the_address_with_the_server_netmask() {
        let net: IpNet = "10.30.0.1/16".parse().unwrap();
        assert_eq!(
            render("P1", "10.30.0.7".parse().unwrap(), net),
            "# homebase: P1\nifconfig-push 10.30.0.7 255.255.0.0\n"
        );
        let v6: IpNet = "fd00:30::1/64".parse().unwrap();
        assert_eq!(
            render("P2\n", "fd00:30::7".parse().unwrap(), v6),
            "# homebase: P2 \nifconfig-ipv6-push fd00:30::7/64 fd00:30::1\n"
        );
    }

    #[test]
    fn sync_keeps_foreign_files_and_removes_withdrawn_clients() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("handmade"),
            "ifconfig-push 10.0.0.9 255.0.0.0\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("gone"),
            "# homebase: P9\nifconfig-push 10.0.0.8 255.0.0.0\n",
        )
        .unwrap();
        let expected = BTreeMap::from([(
            "anna".to_string(),
            "# homebase: P1\nifconfig-push 10.0.0.2 255.0.0.0\n".to_string(),
        )]);
        assert_eq!(missing(dir.path(), &expected), 1);
        sync(dir.path(), &expected).unwrap();
        assert_eq!(missing(dir.path(), &expected), 0);
        assert!(dir.path().join("handmade").exists());
        assert!(!dir.path().join("gone").exists());
    }
}
