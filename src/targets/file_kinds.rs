//! The kinds whose system is files on this machine, written from the state
//! store: the LDIF export, a WireGuard server file, a stock list. Reading
//! them is parsing and comparing, not waiting for a server, so `observe`
//! reads them side by side, each on its own thread (and store connection),
//! into a part of [`Observed`] it then absorbs.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::{csv_stock, local_directory, wireguard_file, Target};
use super::{CsvInventory, LocalDirectory, WireguardFile};
use crate::plan::Observed;
use crate::settings::Settings;
use crate::state::Store;

/// A target of a file kind, by its settings.
pub enum FileKind<'a> {
    Ldif(&'a LocalDirectory),
    WireguardFile(&'a WireguardFile),
    Csv(&'a CsvInventory),
}

impl Target {
    /// `Some` for the kinds read from local files.
    pub(super) fn files(&self) -> Option<FileKind<'_>> {
        match self {
            Target::Local(local) => Some(FileKind::Ldif(local)),
            Target::WireguardFile(wg) => Some(FileKind::WireguardFile(wg)),
            Target::Csv(csv) => Some(FileKind::Csv(csv)),
            _ => None,
        }
    }
}

impl FileKind<'_> {
    /// Whether [`FileKind::read`] compares with what `Store::observed`
    /// read (the LDIF, with the accounts; it needs no store of its own).
    /// The others read their own rows of the store and are given nothing
    /// for `observed`.
    pub fn compares_with_store(&self) -> bool {
        matches!(self, FileKind::Ldif(_))
    }

    /// What target `name`'s files hold, as a part of [`Observed`].
    /// `observed` is what the state store holds, for the kinds that
    /// [compare with it](FileKind::compares_with_store).
    pub fn read(
        &self,
        name: &str,
        settings: &Settings,
        store: Option<&Store>,
        observed: &Observed,
    ) -> Result<Observed> {
        let mut part = Observed::default();
        match self {
            // The store is the directory; the LDIF export must match it.
            FileKind::Ldif(local) => {
                let Some(accounts) = observed.accounts.get(name).filter(|a| !a.is_empty()) else {
                    return Ok(part);
                };
                let path = settings.out_path(&local.ldif);
                let expected = local_directory::render_ldif(
                    &local.base_dn,
                    accounts.iter().map(|(id, a)| (id.as_str(), a)),
                );
                if std::fs::read(&path).ok().as_deref() != Some(expected.as_bytes()) {
                    part.stale_files.insert(
                        path.display().to_string(),
                        "does not match the accounts in the state store".into(),
                    );
                }
            }
            FileKind::WireguardFile(wg) => {
                let path = settings.out_path(&wg.path);
                let peers = match store {
                    Some(store) => store.peers(name)?,
                    None => Vec::new(),
                };
                let text = std::fs::read_to_string(&path).ok();
                let file = wireguard_file::ServerFile::parse(text.as_deref().unwrap_or_default());
                let ours: BTreeSet<String> = peers.iter().map(|(_, _, key)| key.clone()).collect();
                part.foreign_addresses
                    .insert(name.to_string(), file.foreign_addresses(&ours));
                let missing = wireguard_file::missing_peers(&file, &peers);
                if missing > 0 {
                    part.stale_files.insert(
                        path.display().to_string(),
                        format!("{missing} peer(s) of the state store missing or different"),
                    );
                }
            }
            FileKind::Csv(csv) => {
                let assigned = match store {
                    Some(store) => store.device_assignments(name)?,
                    None => BTreeMap::new(),
                };
                let items =
                    csv_stock::read(&settings.path(&csv.stock), &assigned).map_err(|err| {
                        // Refused as `check` refuses it: the setting's line, or the list's own.
                        let problems = settings.target_file_problems();
                        match problems.is_empty() {
                            true => err,
                            false => {
                                crate::error::Failure::Invalid(crate::error::Problems(problems))
                                    .into()
                            }
                        }
                    })?;
                part.stock.insert(name.to_string(), items);
            }
        }
        Ok(part)
    }
}
