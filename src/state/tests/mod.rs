//! Tests of the state store against real SQLite files in temporary folders.

mod audit;
mod crash;
mod journal;
mod secrets;
mod store;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::plan::{Account, Device, Peer};

use super::{RunInfo, Store};

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".homebase").join("state.db");
    (dir, db)
}

pub fn account(username: &str) -> Account {
    Account {
        username: username.to_string(),
        given_name: "Jörg".to_string(),
        family_name: "Müller-Lüdenscheidt".to_string(),
        display_name: "Jörg Müller-Lüdenscheidt".to_string(),
        email: format!("{username}@musterstadt.example"),
        department: Some("Bürgeramt".to_string()),
        groups: vec!["staff".to_string(), "vpn-users".to_string()],
        ou: Some("ou=People".to_string()),
        expires: NaiveDate::from_ymd_opt(2026, 12, 31),
        enabled: true,
    }
}

pub fn peer(address: &str) -> Peer {
    Peer {
        address: address.parse().unwrap(),
        preshared_key: true,
        expires: NaiveDate::from_ymd_opt(2026, 12, 31),
        adopted_key: None,
        full_tunnel: false,
    }
}

pub fn device(asset_tag: &str) -> Device {
    Device {
        asset_tag: asset_tag.to_string(),
        serial: format!("SN-{asset_tag}"),
        kind: "notebook".to_string(),
        model: "ThinkPad T14".to_string(),
    }
}

pub fn run_info() -> RunInfo {
    RunInfo::from_vars(
        "homebase apply staff.csv",
        Some("sha256:abc".to_string()),
        "ci-runner-1".to_string(),
        |name| match name {
            "USER" => Some("admin".to_string()),
            "CI_JOB_ID" => Some("4711".to_string()),
            _ => None,
        },
    )
}

/// A store with one person, "P1" → "jmueller".
pub fn store_with_person(db: &Path) -> Store {
    let mut store = Store::open(db).unwrap();
    store
        .pin_person("P1", "jmueller", "Jörg Müller", "office")
        .unwrap();
    store
}
