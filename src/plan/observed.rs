//! What the state store and the targets hold now: the "current" side of the diff.
//!
//! Built by `apply`/`state` from the store and each target's read; empty when
//! there is no state yet (a first plan).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use chrono::NaiveDate;

use serde::Serialize;

use super::model::{Account, Peer};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    /// Persons homebase has provisioned before, by staff id.
    pub persons: BTreeMap<String, KnownPerson>,
    /// Per directory target: accounts homebase manages, by staff id.
    pub accounts: BTreeMap<String, BTreeMap<String, Account>>,
    /// Per directory target: usernames that exist but belong to nobody on our
    /// books (lower-cased). New usernames avoid them.
    pub foreign_usernames: BTreeMap<String, BTreeSet<String>>,
    /// Per directory target: who holds a foreign username (lower-cased),
    /// as the target names them (a DN), for saying why a new name got a
    /// suffix. Targets that cannot say leave it out.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub username_holders: BTreeMap<String, BTreeMap<String, String>>,
    /// Per directory target: accounts that carry a staff id but are not on
    /// our books (made by hand, or before the state store was lost), by staff
    /// id → username. A new account for that person would be a second one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unmanaged_accounts: BTreeMap<String, BTreeMap<String, String>>,
    /// Per directory target: further accounts carrying the staff id of an
    /// account homebase manages (second accounts), by staff id → usernames.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub duplicate_accounts: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Per VPN target: peers homebase manages, by staff id.
    pub peers: BTreeMap<String, BTreeMap<String, Peer>>,
    /// Per VPN target: addresses in use by peers not on our books (adopted
    /// or hand-made). Never handed out.
    pub foreign_addresses: BTreeMap<String, BTreeSet<IpAddr>>,
    /// Per live VPN target: staff ids whose recorded peer the server lacks
    /// or holds differently (address, key) → what is wrong. Planned as updates.
    pub peer_drift: BTreeMap<String, BTreeMap<String, String>>,
    /// Per inventory target: the stock and who holds what.
    pub stock: BTreeMap<String, Vec<StockItem>>,
    /// Seat pool → staff ids holding a seat.
    pub seats: BTreeMap<String, BTreeSet<String>>,
    /// Staff ids whose bundle was completed once (delivered), as the state
    /// store records it, wherever the bundle is now.
    pub bundles: BTreeSet<String>,
    /// Delivered bundles that are on this machine's disk (their secrets
    /// file is). Not part of the state digest: a plan saved where the
    /// bundles are may be applied where they are not.
    #[serde(skip)]
    pub bundles_here: BTreeSet<String>,
    /// Delivered bundles that no longer show the person's access: it changed
    /// in a run that did not have the bundle. Rewritten where they are.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub stale_bundles: BTreeSet<String>,
    /// Per target: the remote system's id for a person (DN, SCIM id, user id).
    pub remote_ids: BTreeMap<String, BTreeMap<String, String>>,
    /// Files written from the state store that no longer match it (a crash
    /// between journal and file, a hand edit): path → what is wrong.
    pub stale_files: BTreeMap<String, String>,
    /// Per openvpn target: each person's valid certificate (the newest).
    pub certificates: BTreeMap<String, BTreeMap<String, IssuedCert>>,
    /// Per openvpn target: why its CRL must be re-issued soon, for a warning.
    pub crl_due: BTreeMap<String, String>,
    /// Per directory target: account fields the server does not store (it
    /// says so in its schema). Never compared, and named once in a warning.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unstored_fields: BTreeMap<String, BTreeSet<String>>,
}

/// A valid client certificate as the state store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedCert {
    pub serial: String,
    /// The last day it is valid (UTC).
    pub not_after: NaiveDate,
    /// The access end it was issued for (`None`: the default lifetime).
    pub access_end: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownPerson {
    /// Pinned: a person keeps their username on every later run.
    pub username: String,
    pub display_name: String,
    pub profile: String,
    /// Access was withdrawn earlier (offboarded, expired or pruned).
    pub withdrawn: bool,
    /// Withdrawn on request: stays so while the staff list still names them.
    pub offboarded: bool,
}

impl Observed {
    /// Add `part`, what one target (or the bundle folders) read on its own:
    /// its entries replace any of the same key, as if it had been read
    /// into `self`. Every field is named, so a new one cannot be forgotten.
    pub fn absorb(&mut self, part: Observed) {
        let Observed {
            persons,
            accounts,
            foreign_usernames,
            username_holders,
            unmanaged_accounts,
            duplicate_accounts,
            peers,
            foreign_addresses,
            peer_drift,
            stock,
            seats,
            bundles,
            bundles_here,
            stale_bundles,
            remote_ids,
            stale_files,
            certificates,
            crl_due,
            unstored_fields,
        } = part;
        self.persons.extend(persons);
        self.accounts.extend(accounts);
        self.foreign_usernames.extend(foreign_usernames);
        self.username_holders.extend(username_holders);
        self.unmanaged_accounts.extend(unmanaged_accounts);
        self.duplicate_accounts.extend(duplicate_accounts);
        self.peers.extend(peers);
        self.foreign_addresses.extend(foreign_addresses);
        self.peer_drift.extend(peer_drift);
        self.stock.extend(stock);
        self.seats.extend(seats);
        self.bundles.extend(bundles);
        self.bundles_here.extend(bundles_here);
        self.stale_bundles.extend(stale_bundles);
        self.remote_ids.extend(remote_ids);
        self.stale_files.extend(stale_files);
        self.certificates.extend(certificates);
        self.crl_due.extend(crl_due);
        self.unstored_fields.extend(unstored_fields);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockItem {
    pub asset_tag: String,
    pub serial: String,
    pub kind: String,
    pub model: String,
    /// In stock and usable (not in repair, not retired).
    pub available: bool,
    /// Staff id of the holder.
    pub assigned_to: Option<String>,
}
