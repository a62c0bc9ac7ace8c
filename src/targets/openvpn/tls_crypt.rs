//! The tls-crypt key: a 2048-bit static key shared by the server and every
//! client. It encrypts and authenticates the TLS handshake, so a scanner
//! without a config gets no answer. A shared secret: created once (0600),
//! read back on later runs, never logged.

use std::fmt::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::RngCore;

use crate::apply::fsutil::{private_dir, write_atomic};

const BEGIN: &str = "-----BEGIN OpenVPN Static key V1-----";
const END: &str = "-----END OpenVPN Static key V1-----";
/// 2048 bits, as `openvpn --genkey tls-crypt` writes them.
const KEY_BYTES: usize = 256;

/// A new key in OpenVPN's static key format (16 lines of 32 hex digits).
pub fn generate() -> String {
    let mut key = [0u8; KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut out =
        String::from("#\n# 2048 bit OpenVPN static key (tls-crypt), written by homebase\n#\n");
    out.push_str(BEGIN);
    out.push('\n');
    for line in key.chunks(16) {
        let _ = writeln!(out, "{}", hex::encode(line));
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// Whether `text` holds one well-formed static key (the content is never quoted).
pub fn check(text: &str) -> Result<(), String> {
    let (Some(start), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("no `{BEGIN}` … `{END}` block"));
    };
    if end < start {
        return Err("the key block is out of order".into());
    }
    let digits: String = text[start + BEGIN.len()..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if digits.len() != KEY_BYTES * 2 || hex::decode(&digits).is_err() {
        return Err(format!("the key is not {KEY_BYTES} bytes of hex"));
    }
    Ok(())
}

/// The key at `path`: read and checked, or created (0600) when missing.
pub fn ensure(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "{} is accessible by others (mode {mode:04o}); the tls-crypt key is a shared secret: `chmod 600 {}`",
                    path.display(),
                    path.display()
                );
            }
            check(&text).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
            Ok(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.is_dir()) {
                private_dir(dir, 0o700)?;
                // A path through a folder that did not exist yet (`../ta.key`
                // below `out/` before the first run) can name an existing
                // key once the folder is made: read it, never replace it.
                if path.exists() {
                    return ensure(path);
                }
            }
            let text = generate();
            write_atomic(path, text.as_bytes(), Some(0o600))?;
            Ok(text)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_key_behind_a_folder_not_made_yet_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let existing = generate();
        std::fs::write(dir.path().join("ta.key"), &existing).unwrap();
        std::fs::set_permissions(
            dir.path().join("ta.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let through = dir.path().join("out").join("..").join("ta.key");
        assert_eq!(ensure(&through).unwrap(), existing);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ta.key")).unwrap(),
            existing
        );
    }

    #[test]
    fn generated_keys_are_well_formed_and_differ() {
        let a = generate();
        assert!(check(&a).is_ok());
        assert_eq!(
            a.lines().filter(|l| l.len() == 32).count(),
            16,
            "16 lines of 32 hex digits"
        );
        assert_ne!(a, generate());
        assert!(check(
            "-----BEGIN OpenVPN Static key V1-----\nabcd\n-----END OpenVPN Static key V1-----\n"
        )
        .is_err());
        assert!(check("nothing").is_err());
    }

    #[test]
    fn ensure_creates_once_and_refuses_an_open_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/ta.key");
        let first = ensure(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ensure(&path).unwrap(), first, "read back, not replaced");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ensure(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(
            !err.contains(&first[60..90]),
            "the key leaks into the error"
        );
    }
}
