//! Targets: the systems homebase pushes to. Each kind reads what exists (for the
//! plan's diff) and carries out actions, saying whether a failure is transient.
//! A closed set of kinds (`config::TargetConfig`), no plug-in registry.

pub mod csv_stock;
mod error;
pub mod local_directory;
pub mod wireguard_file;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};

pub use error::TargetError;

use crate::config::TargetConfig;
use crate::plan::{Action, Observed};
use crate::settings::Settings;
use crate::state::Store;

/// What the state store and every target hold now. Read-only: creates nothing.
pub fn observe(settings: &Settings) -> Result<Observed> {
    let store = Store::open_existing_read_only(&settings.state_path)?;
    let mut observed = match &store {
        Some(store) => store.observed()?,
        None => Observed::default(),
    };
    for (name, target) in &settings.config.targets {
        match target {
            // The store is the directory.
            TargetConfig::Local(_) => {}
            TargetConfig::WireguardFile(wg) => {
                let path = settings.out_path(&wg.path);
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let file = wireguard_file::ServerFile::parse(&text);
                    let ours: BTreeSet<String> = match &store {
                        Some(store) => store
                            .peers(name)?
                            .into_iter()
                            .map(|(_, _, key)| key)
                            .collect(),
                        None => BTreeSet::new(),
                    };
                    observed
                        .foreign_addresses
                        .insert(name.clone(), file.foreign_addresses(&ours));
                }
            }
            TargetConfig::Csv(csv) => {
                let assigned = match &store {
                    Some(store) => store.device_assignments(name)?,
                    None => BTreeMap::new(),
                };
                let path = settings.path(&csv.stock);
                let items = csv_stock::read(&path, &assigned)
                    .with_context(|| format!("inventory target \"{name}\""))?;
                observed.stock.insert(name.clone(), items);
            }
        }
    }
    // A bundle counts only when it was completed and is still on disk.
    if let Some(store) = &store {
        for (id, _) in store.bundle_fingerprints()? {
            if let Some(known) = observed.persons.get(&id) {
                let dir = settings.out_dir.join(&known.username);
                if dir.join(crate::apply::SECRETS_FILE).is_file() {
                    observed.bundles.insert(id);
                }
            }
        }
    }
    Ok(observed)
}

/// A target ready to carry out actions.
pub enum Target {
    /// Embedded kinds: the state store write that follows success is the effect;
    /// files (LDIF, wg0.conf) are written from the store at the end of the run.
    Embedded,
}

impl Target {
    pub fn connect(config: &TargetConfig) -> Result<Target> {
        match config {
            TargetConfig::Local(_) | TargetConfig::WireguardFile(_) | TargetConfig::Csv(_) => {
                Ok(Target::Embedded)
            }
        }
    }

    /// Carry out one action. `Ok(remote id)` where the system assigns one.
    pub async fn apply(
        &self,
        action: &Action,
        public_key: Option<&str>,
    ) -> Result<Option<String>, TargetError> {
        let _ = (action, public_key);
        match self {
            Target::Embedded => Ok(None),
        }
    }
}
