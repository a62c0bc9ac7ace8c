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

/// Digest of the observed state (its JSON is deterministic: ordered maps only).
pub fn observed_digest(observed: &Observed) -> String {
    let mut digest = InputDigest::default();
    let json = serde_json::to_vec(observed).unwrap_or_default();
    digest.part("observed", &json);
    digest.finish()
}
