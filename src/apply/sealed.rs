//! Encrypted bundles (`bundles.encrypt_to`, `--recipient`, `--recipients-file`).
//!
//! Each bundle becomes one tar archive streamed straight into an age
//! encryptor and from there into a file below the output folder: nothing in
//! plaintext is written anywhere, not even a temporary file (the temporary
//! file beside the target holds ciphertext only). The `age` crate is rage's
//! library, so the archives open with `age -d -i KEY` as well as with rage.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use anyhow::{Context, Result};

/// One recipient as written (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct RecipientError {
    pub reason: String,
}

/// A recipient list that parsed; encrypting to it cannot fail for the keys.
pub struct Recipients {
    keys: Vec<Box<dyn age::Recipient + Send + Sync>>,
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipients({})", self.keys.len())
    }
}

/// Parse one recipient: an age X25519 key or an SSH ed25519/RSA public key
/// (its comment may follow).
pub fn parse_recipient(
    text: &str,
) -> Result<Box<dyn age::Recipient + Send + Sync>, RecipientError> {
    let text = text.trim();
    let fail = |reason: String| RecipientError { reason };
    if text.starts_with("age1") {
        return age::x25519::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send + Sync>)
            .map_err(|e| fail(format!("not a valid age X25519 recipient ({e})")));
    }
    if text.starts_with("ssh-") || text.starts_with("ecdsa-") || text.starts_with("sk-") {
        use age::ssh::ParseRecipientKeyError as E;
        return age::ssh::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send + Sync>)
            .map_err(|e| {
                fail(match e {
                    E::Unsupported(kind) => format!(
                        "SSH key type {kind} cannot be an age recipient (ssh-ed25519 and ssh-rsa can)"
                    ),
                    E::RsaModulusTooSmall => "ssh-rsa key shorter than 2048 bits".into(),
                    E::RsaModulusTooLarge => "ssh-rsa key longer than age accepts".into(),
                    _ => "not a valid SSH public key".into(),
                })
            });
    }
    Err(fail(
        "not a recipient: expected an age key (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …)"
            .into(),
    ))
}

/// The non-empty, non-comment lines of a recipients file (as `age -R` reads
/// it), with their 1-based line numbers.
pub fn recipient_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

impl Recipients {
    pub fn new(keys: Vec<Box<dyn age::Recipient + Send + Sync>>) -> Recipients {
        Recipients { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// An encrypting writer around `out`; `finish` it to seal the file.
    fn encrypt<W: Write>(&self, out: W) -> Result<age::stream::StreamWriter<W>> {
        let encryptor = age::Encryptor::with_recipients(self.keys.iter().map(|k| k.as_ref() as _))
            .map_err(|e| anyhow::anyhow!("cannot encrypt to the recipients: {e}"))?;
        Ok(encryptor.wrap_output(out)?)
    }
}

/// One file of a bundle: its name inside the person's folder, its content.
pub type Entry = (String, Vec<u8>);

fn append<W: Write>(tar: &mut tar::Builder<W>, folder: &str, entries: &[Entry]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o700);
    header.set_size(0);
    header.set_mtime(0);
    tar.append_data(&mut header, format!("{folder}/"), std::io::empty())?;
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o600);
        header.set_size(bytes.len() as u64);
        header.set_mtime(0);
        tar.append_data(&mut header, format!("{folder}/{name}"), bytes.as_slice())?;
    }
    Ok(())
}

/// Write `path` (atomically, 0600): a tar of `folder/` with `entries`,
/// encrypted to `recipients` while it is made.
pub fn write_sealed(
    path: &Path,
    recipients: &Recipients,
    folder: &str,
    entries: &[Entry],
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = tempfile::Builder::new()
        .prefix(".sealing-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut tar = tar::Builder::new(recipients.encrypt(file)?);
    append(&mut tar, folder, entries)?;
    let file = tar.into_inner()?.finish()?;
    file.as_file().sync_all()?;
    set_private(file.path())?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Write `path` (atomically, 0600): `bytes` encrypted to `recipients`.
pub fn write_encrypted(path: &Path, recipients: &Recipients, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = tempfile::Builder::new()
        .prefix(".sealing-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut stream = recipients.encrypt(file)?;
    stream.write_all(bytes)?;
    let file = stream.finish()?;
    file.as_file().sync_all()?;
    set_private(file.path())?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

type Stream = tar::Builder<age::stream::StreamWriter<tempfile::NamedTempFile>>;

/// The one archive of every bundle a run writes, for the helpdesk: opened
/// with the first bundle, sealed when the run ends.
pub struct RunArchive<'a> {
    recipients: &'a Recipients,
    path: PathBuf,
    stream: Mutex<Option<Stream>>,
}

impl<'a> RunArchive<'a> {
    pub fn new(recipients: &'a Recipients, path: PathBuf) -> RunArchive<'a> {
        RunArchive {
            recipients,
            path,
            stream: Mutex::new(None),
        }
    }

    pub fn add(&self, folder: &str, entries: &[Entry]) -> Result<()> {
        let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        if stream.is_none() {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            let file = tempfile::Builder::new()
                .prefix(".sealing-")
                .tempfile_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            *stream = Some(tar::Builder::new(self.recipients.encrypt(file)?));
        }
        let tar = stream.as_mut().expect("opened above");
        append(tar, folder, entries)
    }

    /// Seal the archive; its path, or none when the run wrote no bundle.
    pub fn finish(&self) -> Result<Option<PathBuf>> {
        let Some(tar) = self.stream.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(None);
        };
        let file = tar.into_inner()?.finish()?;
        file.as_file().sync_all()?;
        set_private(file.path())?;
        file.persist(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(Some(self.path.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_parse_or_say_why() {
        let key = age::x25519::Identity::generate().to_public().to_string();
        assert!(parse_recipient(&key).is_ok());
        assert!(parse_recipient("age1notakey").is_err());
        let e = parse_recipient("hunter2").err().unwrap().to_string();
        assert!(e.contains("expected an age key"), "{e}");
        let e = parse_recipient("ssh-dss AAAAB3NzaC1kc3MAAACBAP")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("SSH"), "{e}");
    }

    #[test]
    fn sealed_archives_hold_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let identity = age::x25519::Identity::generate();
        let recipients = Recipients::new(vec![Box::new(identity.to_public())]);
        let path = dir.path().join("a.tar.age");
        let secret = b"initial_password=Sup3rSecret!".to_vec();
        write_sealed(
            &path,
            &recipients,
            "a",
            &[(".secrets".into(), secret.clone())],
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"));
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
        let decryptor = age::Decryptor::new(bytes.as_slice()).unwrap();
        let reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .unwrap();
        let mut archive = tar::Archive::new(reader);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
            names.push(entry.path().unwrap().display().to_string());
            if names.last().unwrap() == "a/.secrets" {
                assert_eq!(body, secret);
            }
        }
        assert_eq!(names, ["a/", "a/.secrets"]);
        // Only the sealed file is left: no temporary file beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
