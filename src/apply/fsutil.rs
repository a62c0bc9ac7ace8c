//! Atomic, permission-aware file writes: a reader (or a crash) never sees half
//! a file — except a new file of a bundle not yet recorded complete
//! ([`write_new`]), which the next run writes again.
//!
//! An apply writes six files for each person, so each write makes no more
//! system calls than it needs: no check that the folder exists before it
//! (creating the temporary file tells), no `getcwd` for a relative path (the
//! working directory, read once: homebase never changes it), and no `chmod`
//! after a file or folder is created with its mode, unless the umask took
//! bits of it.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};

/// Write `bytes` to `path` via a temporary file in the same folder and a rename,
/// so a killed process never leaves half a file. `mode` sets the permissions
/// before any byte is written (0600 for secrets; 0644 when `None`). The data is
/// not fsynced: the state store (SQLite) is the durable record; files are
/// re-derived from it.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = absolute(dir);
    let mode = mode.unwrap_or(0o644);
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(".homebase-")
        .permissions(std::fs::Permissions::from_mode(mode));
    let mut tmp = match builder.tempfile_in(&dir) {
        Err(err) if err.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            builder.tempfile_in(&dir)
        }
        other => other,
    }
    .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // Created with `mode` less the umask: put back what the umask took.
    if umask().is_none_or(|umask| umask & mode != 0) {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `path`, made absolute against the working directory as it was first read.
fn absolute(path: &Path) -> std::borrow::Cow<'_, Path> {
    static CWD: OnceLock<Option<PathBuf>> = OnceLock::new();
    if path.is_absolute() {
        return path.into();
    }
    match CWD.get_or_init(|| std::env::current_dir().ok()) {
        Some(cwd) => cwd.join(path).into(),
        None => path.into(),
    }
}

/// The process's umask, from `/proc/self/status` (Linux 4.7+); `None` when
/// unknown. Read once: homebase never changes it.
fn umask() -> Option<u32> {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    })
}

/// Create a folder (and parents) with `mode`, and tighten it if it exists.
pub fn private_dir(path: &Path, mode: u32) -> Result<()> {
    let created = match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => true,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => false,
        Err(_) => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            false
        }
    };
    // A folder made just now has `mode` unless the umask took bits of it.
    if !created || umask().is_none_or(|umask| umask & mode != 0) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set permissions of {}", path.display()))?;
    }
    Ok(())
}

/// Write a file that does not exist yet in place: created with `mode`
/// (exclusively: `Ok(false)`, nothing written, if it exists), then filled.
/// Half the system calls of [`write_atomic`] and no rename, but a killed
/// process leaves a short file: only for files whose completion is recorded
/// elsewhere after they are written (a bundle's, which the journal marks
/// complete afterwards and a later run writes again otherwise).
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(err) => return Err(err).with_context(|| format!("cannot create {}", path.display())),
    };
    if umask().is_none_or(|umask| umask & mode != 0) {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// Write only if the content differs: re-runs leave files (and mtimes) untouched.
/// Returns whether the file was written.
pub fn write_if_changed(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_atomic(path, bytes, mode)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_with_the_mode_into_new_folders() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/secret");
        write_atomic(&path, b"x", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let public = root.path().join("public");
        write_atomic(&public, b"y", None).unwrap();
        assert_eq!(std::fs::metadata(&public).unwrap().mode() & 0o777, 0o644);
        // Replaced, not appended; no temporary file left behind.
        write_atomic(&path, b"z", Some(0o640)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"z");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(root.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"]);
    }

    #[test]
    fn new_files_are_written_with_their_mode_and_existing_ones_left() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("f");
        assert!(write_new(&path, b"first", 0o600).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(!write_new(&path, b"second", 0o600).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let missing = root.path().join("no-such-folder").join("f");
        let err = write_new(&missing, b"x", 0o600).unwrap_err();
        assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
    }

    #[test]
    fn unchanged_content_is_not_rewritten() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("f");
        assert!(write_if_changed(&path, b"same", Some(0o600)).unwrap());
        let before = std::fs::metadata(&path).unwrap();
        assert!(!write_if_changed(&path, b"same", Some(0o600)).unwrap());
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (before.ino(), before.mtime_nsec()),
            (after.ino(), after.mtime_nsec())
        );
        assert!(write_if_changed(&path, b"other", Some(0o600)).unwrap());
    }

    #[test]
    fn private_dirs_are_made_and_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out/person");
        private_dir(&dir, 0o700).unwrap();
        for d in [&dir, &root.path().join("out")] {
            assert_eq!(std::fs::metadata(d).unwrap().mode() & 0o777, 0o700);
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir, 0o700).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn reads_the_umask() {
        // The kernel's answer: umask(2) sets a mask and returns the old one;
        // setting it back at once leaves the process as it was (0o022 is the
        // usual mask, so other tests rarely see a difference meanwhile).
        // SAFETY: umask only swaps the process's file creation mask.
        let current = unsafe {
            let old = libc::umask(0o022);
            libc::umask(old);
            old
        };
        assert_eq!(umask(), Some(current));
    }
}
