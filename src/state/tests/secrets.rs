//! Never a secret in the store (docs/contract.md, "Secrets").

use base64::Engine;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::plan::Op;
use crate::state::{Entry, EntryOutcome, ResourceKind, RunOutcome, Store, WriteOp};

use super::{account, device, peer, run_info, temp_db};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The bytes of the database and its -wal and -shm files, whichever exist.
fn store_bytes(db: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(content) = std::fs::read(&name) {
            bytes.extend(content);
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_store_file() {
    let (_dir, db) = temp_db();
    // What apply generates: the key pair, a preshared key, a first password.
    let private = StaticSecret::random_from_rng(rand::rngs::OsRng);
    let public = b64(PublicKey::from(&private).as_bytes());
    let private_b64 = b64(private.as_bytes());
    let preshared = b64(&rand::random::<[u8; 32]>());
    let password = format!("Pw-{}", b64(&rand::random::<[u8; 12]>()));
    let secrets: [(&str, Vec<u8>); 5] = [
        ("private key (base64)", private_b64.clone().into_bytes()),
        ("private key (raw)", private.as_bytes().to_vec()),
        ("preshared key", preshared.clone().into_bytes()),
        ("password", password.clone().into_bytes()),
        (
            "password (UTF-16)",
            password.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ),
    ];

    // A full cycle: every write the store and the journal offer.
    let mut store = Store::open(&db).unwrap();
    let run = store.begin_run(&run_info()).unwrap();
    store
        .pin_person("P1", "jmueller", "Jörg Müller", "office")
        .unwrap();
    store
        .put_account(
            "directory",
            "P1",
            &account("jmueller"),
            Some("uid=jmueller"),
        )
        .unwrap();
    store
        .put_peer("wg0", "P1", &peer("10.20.0.2"), &public)
        .unwrap();
    store.assign_device("stock", "P1", &device("NB-1")).unwrap();
    store.add_seat("office-suite", "P1").unwrap();
    store.set_bundle("P1", "sha256:feedface").unwrap();
    let journal = store.journal().unwrap();
    journal
        .write_all(vec![
            WriteOp::PinPerson {
                id: "P2".into(),
                username: "aschmidt".into(),
                display_name: "Anna Schmidt".into(),
                profile: "office".into(),
            },
            WriteOp::AdoptPeer {
                target: "wg0".into(),
                person_id: "P2".into(),
                peer: peer("10.20.0.3"),
                public_key: public.clone(),
            },
            WriteOp::Entry(Entry::new(
                run,
                Some("P1"),
                "wg0",
                ResourceKind::VpnPeer,
                Op::Create,
                EntryOutcome::Ok,
                "peer created",
            )),
        ])
        .await
        .unwrap();
    let before_close = store_bytes(&db);
    journal.close().unwrap();
    store.set_withdrawn("P1", true).unwrap();
    store.remove_peer("wg0", "P1").unwrap();
    store.release_device("stock", "NB-1").unwrap();
    store.finish_run(run, RunOutcome::Success, 7, 0).unwrap();
    let before_drop = store_bytes(&db);
    drop(store);
    let after = store_bytes(&db);

    for bytes in [&before_close, &before_drop, &after] {
        // The scan sees what was stored...
        assert!(
            contains(bytes, public.as_bytes()),
            "public key not found: the scan is blind"
        );
        assert!(contains(bytes, "Müller".as_bytes()));
        // ...and no secret.
        for (what, secret) in &secrets {
            assert!(
                !contains(bytes, secret),
                "the {what} reached the state store"
            );
        }
    }
}

#[test]
fn no_column_can_hold_a_secret() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let mut stmt = store
        .conn()
        .prepare(
            "SELECT m.name, c.name, c.type FROM sqlite_schema m, pragma_table_info(m.name) c
             WHERE m.type = 'table'",
        )
        .unwrap();
    let columns: Vec<(String, String, String)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(columns.len() > 40);
    for (table, column, kind) in &columns {
        let name = column.to_lowercase();
        for word in [
            "private",
            "password",
            "secret",
            "psk",
            "passphrase",
            "token",
        ] {
            assert!(!name.contains(word), "{table}.{column}");
        }
        if name.contains("key") {
            // The public key, and a flag saying a preshared key is configured.
            assert!(
                (name == "public_key" && kind == "TEXT")
                    || (name == "preshared_key" && kind == "INTEGER"),
                "{table}.{column} {kind}"
            );
        }
    }
}
