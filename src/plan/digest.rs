//! Digests that make a saved plan refuse to apply once its world has moved on.

use sha2::{Digest, Sha256};

use super::observed::Observed;

/// Feeds named parts into one SHA-256; names keep `ab`+`c` apart from `a`+`bc`.
#[derive(Default)]
pub struct InputDigest(Sha256);

impl InputDigest {
    pub fn part(&mut self, name: &str, bytes: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.0.finalize()))
    }
}

/// Digest of the observed state (its JSON is deterministic: ordered maps
/// only), hashed as it is serialised rather than from a copy.
pub fn observed_digest(observed: &Observed) -> String {
    json_digest(observed)
}

/// `sha256:…` of `value`'s compact JSON as `serde_json` writes it, hashed as
/// it is written rather than held in memory.
pub fn json_digest(value: &impl serde::Serialize) -> String {
    digest_with(|hashing| serde_json::to_writer(hashing, value))
}

/// [`json_digest`] of the pretty JSON plus the newline a saved plan ends with.
pub fn pretty_json_digest(value: &impl serde::Serialize) -> String {
    digest_with(|hashing| {
        serde_json::to_writer_pretty(&mut *hashing, value)?;
        hashing.0.update(b"\n");
        Ok(())
    })
}

fn digest_with(write: impl FnOnce(&mut Hashing) -> serde_json::Result<()>) -> String {
    let mut hashing = Hashing(Sha256::new());
    // Plain data (string keys, finite numbers) into a hash: cannot fail.
    let _ = write(&mut hashing);
    format!("sha256:{}", hex::encode(hashing.0.finalize()))
}

/// An `io::Write` that feeds SHA-256.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
