use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{KnownPerson, Observed};
use crate::state::{StateError, Store, WriteOp, CURRENT_VERSION};

use super::{account, device, peer, store_with_person, temp_db};

fn user_version(store: &Store) -> i64 {
    store
        .conn()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

#[test]
fn open_creates_a_private_store_at_the_current_schema() {
    let (dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    assert_eq!(user_version(&store), CURRENT_VERSION);
    let mode: String = store
        .conn()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: bool = store
        .conn()
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert!(foreign_keys);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(".homebase")), 0o700);
        assert_eq!(mode(&db), 0o600);
    }
}

#[test]
fn reopening_keeps_the_data() {
    let (_dir, db) = temp_db();
    {
        let mut store = store_with_person(&db);
        store
            .put_account("directory", "P1", &account("jmueller"), None)
            .unwrap();
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(user_version(&store), CURRENT_VERSION);
    assert_eq!(
        store.person("P1").unwrap().unwrap().username,
        "jmueller".to_string()
    );
    assert_eq!(store.accounts("directory").unwrap().len(), 1);
}

#[test]
fn a_store_from_a_newer_homebase_is_refused() {
    let (_dir, db) = temp_db();
    {
        let store = Store::open(&db).unwrap();
        store
            .conn()
            .pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
    }
    let err = Store::open(&db).unwrap_err();
    assert!(matches!(err, StateError::TooNew { .. }), "{err}");
    let err = Store::open_existing_read_only(&db).unwrap_err();
    assert!(
        err.to_string().contains("newer than this homebase"),
        "{err}"
    );
}

#[test]
fn observed_round_trips_everything_the_store_knows() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    store
        .pin_person("P2", "aschmidt", "Anna Schmidt", "field")
        .unwrap();
    store.set_withdrawn("P2", true).unwrap();
    let mut disabled = account("aschmidt");
    disabled.enabled = false;
    disabled.department = None;
    disabled.groups = vec![];
    disabled.expires = None;
    disabled.ou = None;
    store
        .put_account("directory", "P1", &account("jmueller"), None)
        .unwrap();
    store
        .put_account("directory", "P2", &disabled, Some("uid=aschmidt"))
        .unwrap();
    store
        .put_peer("wg0", "P1", &peer("10.20.0.2"), "PUBKEY1=")
        .unwrap();
    let mut v6 = peer("fd00::2");
    v6.preshared_key = false;
    v6.expires = None;
    store.put_peer("wg6", "P2", &v6, "PUBKEY2=").unwrap();
    store.add_seat("office-suite", "P1").unwrap();
    store.add_seat("office-suite", "P2").unwrap();
    store.add_seat("office-suite", "P2").unwrap(); // idempotent
    store.add_seat("vpn-client", "P1").unwrap();

    let observed = store.observed().unwrap();

    let expected = Observed {
        persons: BTreeMap::from([
            (
                "P1".to_string(),
                KnownPerson {
                    username: "jmueller".into(),
                    display_name: "Jörg Müller".into(),
                    profile: "office".into(),
                    withdrawn: false,
                    offboarded: false,
                },
            ),
            (
                "P2".to_string(),
                KnownPerson {
                    username: "aschmidt".into(),
                    display_name: "Anna Schmidt".into(),
                    profile: "field".into(),
                    withdrawn: true,
                    offboarded: false,
                },
            ),
        ]),
        accounts: BTreeMap::from([(
            "directory".to_string(),
            BTreeMap::from([
                ("P1".to_string(), account("jmueller")),
                ("P2".to_string(), disabled),
            ]),
        )]),
        peers: BTreeMap::from([
            (
                "wg0".to_string(),
                BTreeMap::from([("P1".to_string(), peer("10.20.0.2"))]),
            ),
            ("wg6".to_string(), BTreeMap::from([("P2".to_string(), v6)])),
        ]),
        seats: BTreeMap::from([
            (
                "office-suite".to_string(),
                BTreeSet::from(["P1".to_string(), "P2".to_string()]),
            ),
            ("vpn-client".to_string(), BTreeSet::from(["P1".to_string()])),
        ]),
        ..Observed::default()
    };
    // Observed has no PartialEq; its JSON is deterministic (ordered maps).
    assert_eq!(
        serde_json::to_value(&observed).unwrap(),
        serde_json::to_value(&expected).unwrap()
    );

    store.remove_seat("office-suite", "P2").unwrap();
    store.remove_peer("wg6", "P2").unwrap();
    store.remove_account("directory", "P2").unwrap();
    let observed = store.observed().unwrap();
    assert_eq!(observed.seats["office-suite"].len(), 1);
    assert!(!observed.peers.contains_key("wg6"));
    assert_eq!(observed.accounts["directory"].len(), 1);
    // Persons are never forgotten: their username stays pinned.
    assert_eq!(observed.persons.len(), 2);
}

#[test]
fn a_person_keeps_their_username() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    // Name and profile may change; the username may not.
    store
        .pin_person("P1", "jmueller", "Jörg Müller-Lüdenscheidt", "field")
        .unwrap();
    let person = store.person("P1").unwrap().unwrap();
    assert_eq!(person.display_name, "Jörg Müller-Lüdenscheidt");
    assert_eq!(person.profile, "field");

    let err = store
        .pin_person("P1", "jmueller2", "Jörg Müller", "office")
        .unwrap_err();
    assert!(matches!(err, StateError::UsernamePinned { .. }), "{err}");
    assert!(
        err.to_string().contains("keeps the username jmueller"),
        "{err}"
    );

    // Case-insensitively unique across persons.
    let err = store
        .pin_person("P9", "JMueller", "Someone Else", "office")
        .unwrap_err();
    assert!(
        matches!(err, StateError::UsernameTaken { ref holder, .. } if holder == "P1"),
        "{err}"
    );
    assert!(store.person("P9").unwrap().is_none());
}

#[test]
fn resources_need_a_known_person() {
    let (_dir, db) = temp_db();
    let mut store = Store::open(&db).unwrap();
    let err = store
        .put_account("directory", "P404", &account("ghost"), None)
        .unwrap_err();
    assert!(
        matches!(err, StateError::UnknownPerson { ref id } if id == "P404"),
        "{err}"
    );
    assert!(store.set_withdrawn("P404", true).is_err());
    assert!(store.add_seat("office-suite", "P404").is_err());
    assert!(store
        .put_peer("wg0", "P404", &peer("10.0.0.9"), "K=")
        .is_err());
    assert!(store
        .assign_device("stock", "P404", &device("NB-1"))
        .is_err());
    assert!(store.set_bundle("P404", "sha256:00").is_err());
}

#[test]
fn accounts_keep_their_remote_id_and_sort_by_username() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    store
        .pin_person("P2", "aschmidt", "Anna", "office")
        .unwrap();
    store
        .put_account(
            "ldap",
            "P1",
            &account("jmueller"),
            Some("uid=jmueller,ou=People"),
        )
        .unwrap();
    store
        .put_account("ldap", "P2", &account("aschmidt"), None)
        .unwrap();
    // An update without a remote id keeps the recorded one.
    let mut changed = account("jmueller");
    changed.groups.push("admins".into());
    store.put_account("ldap", "P1", &changed, None).unwrap();

    let accounts = store.accounts("ldap").unwrap();
    let names: Vec<_> = accounts.iter().map(|(_, a)| a.username.as_str()).collect();
    assert_eq!(names, ["aschmidt", "jmueller"]);
    assert_eq!(accounts[1].1, changed);
    assert_eq!(
        store.remote_id("ldap", "P1").unwrap().as_deref(),
        Some("uid=jmueller,ou=People")
    );
    assert_eq!(store.remote_id("ldap", "P2").unwrap(), None);

    // Another person's username on the same target is refused.
    let err = store
        .put_account("ldap", "P2", &account("jmueller"), None)
        .unwrap_err();
    assert!(
        matches!(err, StateError::UsernameTaken { ref holder, .. } if holder == "P1"),
        "{err}"
    );
}

#[test]
fn peers_sort_by_address_and_addresses_are_never_shared() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    for (id, name) in [("P2", "b"), ("P3", "c")] {
        store.pin_person(id, name, name, "office").unwrap();
    }
    store
        .put_peer("wg0", "P1", &peer("10.20.0.10"), "K1=")
        .unwrap();
    store
        .put_peer("wg0", "P2", &peer("10.20.0.9"), "K2=")
        .unwrap();
    store
        .adopt_peer("wg0", "P3", &peer("10.20.1.1"), "K3=")
        .unwrap();

    let peers = store.peers("wg0").unwrap();
    let order: Vec<_> = peers
        .iter()
        .map(|(id, p, _)| (id.as_str(), p.address.to_string()))
        .collect();
    assert_eq!(
        order,
        [
            ("P2", "10.20.0.9".to_string()),
            ("P1", "10.20.0.10".to_string()),
            ("P3", "10.20.1.1".to_string())
        ]
    );
    assert_eq!(peers[1].2, "K1=");

    let err = store
        .put_peer("wg0", "P2", &peer("10.20.0.10"), "K2=")
        .unwrap_err();
    assert!(
        matches!(err, StateError::AddressTaken { ref holder, .. } if holder == "P1"),
        "{err}"
    );

    // An update with the adopted key keeps the mark, and the key is
    // reported as adopted (homebase has no private key for it).
    store
        .put_peer("wg0", "P3", &peer("10.20.1.1"), "K3=")
        .unwrap();
    assert_eq!(
        store.adopted_addresses("wg0").unwrap(),
        BTreeSet::from(["10.20.1.1".parse().unwrap()])
    );
    let p3 = store.peers("wg0").unwrap().pop().unwrap();
    assert_eq!(p3.1.adopted_key.as_deref(), Some("K3="));
    assert!(store.adopted_addresses("other").unwrap().is_empty());
    // A rotated key is homebase's own: the peer is no longer adopted.
    store
        .put_peer("wg0", "P3", &peer("10.20.1.1"), "K3-new=")
        .unwrap();
    assert!(store.adopted_addresses("wg0").unwrap().is_empty());
    assert_eq!(
        store.peers("wg0").unwrap().pop().unwrap().1.adopted_key,
        None
    );
}

#[test]
fn devices_are_assigned_once_and_released() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    store
        .pin_person("P2", "aschmidt", "Anna", "office")
        .unwrap();
    store
        .assign_device("stock", "P1", &device("NB-001"))
        .unwrap();
    store
        .assign_device("stock", "P1", &device("MON-007"))
        .unwrap();
    // Resuming: the same assignment again is fine.
    store
        .assign_device("stock", "P1", &device("NB-001"))
        .unwrap();

    let err = store
        .assign_device("stock", "P2", &device("NB-001"))
        .unwrap_err();
    assert!(
        matches!(err, StateError::DeviceTaken { ref holder, .. } if holder == "P1"),
        "{err}"
    );

    assert_eq!(
        store.device_assignments("stock").unwrap(),
        BTreeMap::from([
            ("MON-007".to_string(), "P1".to_string()),
            ("NB-001".to_string(), "P1".to_string()),
        ])
    );
    assert_eq!(store.devices("stock").unwrap()[1].1, device("NB-001"));

    store.release_device("stock", "NB-001").unwrap();
    store
        .assign_device("stock", "P2", &device("NB-001"))
        .unwrap();
    assert_eq!(store.device_assignments("stock").unwrap()["NB-001"], "P2");
}

#[test]
fn bundle_fingerprints_are_replaced() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    store.set_bundle("P1", "sha256:1111").unwrap();
    store.set_bundle("P1", "sha256:2222").unwrap();
    assert_eq!(
        store.bundle_fingerprints().unwrap(),
        BTreeMap::from([("P1".to_string(), "sha256:2222".to_string())])
    );
    // Out of date after a run without the bundle; fresh again once rewritten.
    assert!(store.stale_bundles().unwrap().is_empty());
    store
        .write_all(&[WriteOp::MarkBundleStale {
            person_id: "P1".into(),
        }])
        .unwrap();
    assert_eq!(
        store.stale_bundles().unwrap(),
        BTreeSet::from(["P1".to_string()])
    );
    store.set_bundle("P1", "sha256:3333").unwrap();
    assert!(store.stale_bundles().unwrap().is_empty());
}

#[test]
fn a_peer_updated_without_a_key_keeps_the_recorded_one() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    store
        .put_peer("wg0", "P1", &peer("10.20.0.5"), "K1=")
        .unwrap();
    let mut moved = peer("10.20.0.6");
    moved.expires = chrono::NaiveDate::from_ymd_opt(2027, 1, 31);
    store
        .write_all(&[WriteOp::UpdatePeer {
            target: "wg0".into(),
            person_id: "P1".into(),
            peer: moved.clone(),
        }])
        .unwrap();
    let (id, recorded, key) = store.peers("wg0").unwrap().pop().unwrap();
    assert_eq!((id.as_str(), key.as_str()), ("P1", "K1="));
    assert_eq!(recorded.address, moved.address);
    assert_eq!(recorded.expires, moved.expires);
    let err = store
        .write_all(&[WriteOp::UpdatePeer {
            target: "wg0".into(),
            person_id: "P9".into(),
            peer: moved,
        }])
        .unwrap_err();
    assert!(matches!(err, StateError::UnknownPerson { .. }), "{err}");
}

#[test]
fn read_only_open_of_a_missing_store_creates_nothing() {
    let (dir, db) = temp_db();
    assert!(Store::open_existing_read_only(&db).unwrap().is_none());
    assert!(!dir.path().join(".homebase").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn read_only_open_reads_and_refuses_to_write() {
    let (_dir, db) = temp_db();
    drop(store_with_person(&db));
    let files = |dir: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let folder = db.parent().unwrap();
    let before = files(folder);
    let bytes = std::fs::read(&db).unwrap();

    let mut store = Store::open_existing_read_only(&db).unwrap().unwrap();
    assert_eq!(store.persons().unwrap().len(), 1);
    assert_eq!(store.observed().unwrap().persons.len(), 1);
    let err = store.pin_person("P2", "x", "X", "office").unwrap_err();
    assert!(matches!(err, StateError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(store.journal().is_err());
    drop(store);

    assert_eq!(files(folder), before);
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}

#[test]
fn an_empty_file_reads_as_no_state() {
    let (_dir, db) = temp_db();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"").unwrap();
    assert!(Store::open_existing_read_only(&db).unwrap().is_none());
}

#[test]
fn open_sets_durable_write_settings() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let pragma = |name: &str| -> i64 {
        store
            .conn()
            .pragma_query_value(None, name, |row| row.get(0))
            .unwrap()
    };
    // NORMAL = 1: in WAL mode a commit survives a killed process.
    assert_eq!(pragma("synchronous"), 1);
    assert!(pragma("busy_timeout") > 0);
    assert_eq!(pragma("wal_autocheckpoint"), 10000);
}

#[test]
fn a_closed_store_leaves_only_its_file() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    let journal = store.journal().unwrap();
    journal.close().unwrap();
    store.add_seat("office-suite", "P1").unwrap();
    drop(store);
    let names: Vec<_> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["state.db"]);
    // And it opens again in WAL mode, with everything in it.
    let store = Store::open(&db).unwrap();
    assert_eq!(store.seats().unwrap()["office-suite"].len(), 1);
}
