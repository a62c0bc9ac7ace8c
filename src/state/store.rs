//! The state store: what homebase has provisioned, for whom, on which target.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};

use crate::plan::{Account, Device, IssuedCert, KnownPerson, Observed, Peer};

use super::certificates::Certificate;

use super::columns;
use super::connect;
use super::dump::{self, Dump};
use super::journal::Journal;
use super::location::Location;
use super::postgres::{read as pg, PgSession};
use super::write::{self, WriteOp};
use super::StateError;

/// One connection to the store. Each write method is one short transaction;
/// for the many small writes of an apply, use [`Store::journal`].
///
/// Two backends with the same guarantees: a SQLite file (one connection in
/// this process) or PostgreSQL (a session on a thread of its own).
#[derive(Debug)]
pub struct Store {
    backend: Backend,
    location: Location,
    read_only: bool,
}

#[derive(Debug)]
pub(super) enum Backend {
    Sqlite(Connection),
    Postgres(PgSession),
}

/// The SQLite connection, or else the PostgreSQL answer returned at once.
macro_rules! sqlite_or {
    ($self:ident, $pg:expr) => {
        match &$self.backend {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(session) => return $pg(session),
        }
    };
}

impl Store {
    /// Opens the SQLite store for writing, creating it (folder 0700, file
    /// 0600) and bringing its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StateError> {
        Store::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens the store at `location` for writing, creating it and bringing
    /// its schema up to date.
    pub fn open_at(location: &Location) -> Result<Store, StateError> {
        let backend = match location {
            Location::Sqlite(path) => Backend::Sqlite(connect::read_write(path)?),
            Location::Postgres(pg) => {
                Backend::Postgres(PgSession::open(pg, true)?.ok_or_else(|| {
                    StateError::PgConnect {
                        location: pg.to_string(),
                        detail: "the schema was not created".into(),
                    }
                })?)
            }
        };
        Ok(Store {
            backend,
            location: location.clone(),
            read_only: false,
        })
    }

    /// Opens an existing SQLite store for reading; `None` when there is none
    /// yet. Creates nothing and writes nothing (`plan`, `status`).
    pub fn open_existing_read_only(path: &Path) -> Result<Option<Store>, StateError> {
        Store::open_existing_read_only_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Like [`Store::open_existing_read_only`], at any location.
    pub fn open_existing_read_only_at(location: &Location) -> Result<Option<Store>, StateError> {
        let backend = match location {
            Location::Sqlite(path) => connect::read_only(path)?.map(Backend::Sqlite),
            Location::Postgres(pg) => PgSession::open(pg, false)?.map(Backend::Postgres),
        };
        Ok(backend.map(|backend| Store {
            backend,
            location: location.clone(),
            read_only: true,
        }))
    }

    pub(super) fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQLite connection (tests look at its pragmas).
    #[cfg(test)]
    pub(super) fn conn(&self) -> &Connection {
        match &self.backend {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(_) => panic!("not a SQLite store"),
        }
    }

    /// A group-committing writer on its own connection to this store.
    pub fn journal(&self) -> Result<Journal, StateError> {
        self.writable()?;
        match &self.location {
            Location::Sqlite(path) => Journal::open(path),
            Location::Postgres(pg) => Journal::open_postgres(pg),
        }
    }

    pub(super) fn writable(&self) -> Result<(), StateError> {
        if self.read_only {
            return Err(StateError::ReadOnly {
                path: self.location.to_string().into(),
            });
        }
        Ok(())
    }

    /// The whole state as plain data (`state dump`, `state migrate`).
    pub fn dump(&self) -> Result<Dump, StateError> {
        match &self.backend {
            Backend::Sqlite(conn) => dump::sqlite::dump(conn),
            Backend::Postgres(session) => {
                session.call(|conn| dump::postgres::dump(conn, super::CURRENT_VERSION))
            }
        }
    }

    /// Copies a dump into this store, which must hold nothing yet.
    pub fn load(&mut self, from: &Dump) -> Result<(), StateError> {
        self.writable()?;
        if from.version != super::CURRENT_VERSION {
            return Err(StateError::TooOld {
                path: "the dump".into(),
                found: from.version,
                current: super::CURRENT_VERSION,
            });
        }
        if !self.persons()?.is_empty() || !self.history(1)?.is_empty() {
            return Err(StateError::NotEmpty {
                place: self.location.to_string(),
            });
        }
        match &mut self.backend {
            Backend::Sqlite(conn) => dump::sqlite::load(conn, from),
            Backend::Postgres(session) => {
                let from = from.clone();
                session.call(move |conn| dump::postgres::load(conn, &from))
            }
        }
    }

    // ---- writes -------------------------------------------------------

    /// Applies all operations in one transaction: all of them or none.
    pub fn write_all(&mut self, ops: &[WriteOp]) -> Result<(), StateError> {
        self.writable()?;
        let conn = match &mut self.backend {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(session) => return session.write_all(ops.to_vec()),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = columns::timestamp(Utc::now());
        for op in ops {
            write::apply(&tx, op, &now)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn write(&mut self, op: WriteOp) -> Result<(), StateError> {
        self.write_all(std::slice::from_ref(&op))
    }

    /// Records the person's username for good, or refreshes name and profile.
    pub fn pin_person(
        &mut self,
        id: &str,
        username: &str,
        display_name: &str,
        profile: &str,
    ) -> Result<(), StateError> {
        self.write(WriteOp::PinPerson {
            id: id.into(),
            username: username.into(),
            display_name: display_name.into(),
            profile: profile.into(),
        })
    }

    pub fn set_offboarded(&mut self, id: &str, offboarded: bool) -> Result<(), StateError> {
        self.write(WriteOp::SetOffboarded {
            id: id.into(),
            offboarded,
        })
    }

    pub fn set_withdrawn(&mut self, id: &str, withdrawn: bool) -> Result<(), StateError> {
        self.write(WriteOp::SetWithdrawn {
            id: id.into(),
            withdrawn,
        })
    }

    /// `remote_id: None` keeps the remote id already recorded.
    pub fn put_account(
        &mut self,
        target: &str,
        person_id: &str,
        account: &Account,
        remote_id: Option<&str>,
    ) -> Result<(), StateError> {
        self.write(WriteOp::PutAccount {
            target: target.into(),
            person_id: person_id.into(),
            account: account.clone(),
            remote_id: remote_id.map(str::to_string),
        })
    }

    pub fn remove_account(&mut self, target: &str, person_id: &str) -> Result<(), StateError> {
        self.write(WriteOp::RemoveAccount {
            target: target.into(),
            person_id: person_id.into(),
        })
    }

    /// Records the peer with its public key (the private key stays in the bundle).
    pub fn put_peer(
        &mut self,
        target: &str,
        person_id: &str,
        peer: &Peer,
        public_key: &str,
    ) -> Result<(), StateError> {
        self.write(WriteOp::PutPeer {
            target: target.into(),
            person_id: person_id.into(),
            peer: peer.clone(),
            public_key: public_key.into(),
        })
    }

    /// Records a peer that existed before homebase (`adopt`).
    pub fn adopt_peer(
        &mut self,
        target: &str,
        person_id: &str,
        peer: &Peer,
        public_key: &str,
    ) -> Result<(), StateError> {
        self.write(WriteOp::AdoptPeer {
            target: target.into(),
            person_id: person_id.into(),
            peer: peer.clone(),
            public_key: public_key.into(),
        })
    }

    pub fn remove_peer(&mut self, target: &str, person_id: &str) -> Result<(), StateError> {
        self.write(WriteOp::RemovePeer {
            target: target.into(),
            person_id: person_id.into(),
        })
    }

    pub fn assign_device(
        &mut self,
        target: &str,
        person_id: &str,
        device: &Device,
    ) -> Result<(), StateError> {
        self.write(WriteOp::AssignDevice {
            target: target.into(),
            person_id: person_id.into(),
            device: device.clone(),
        })
    }

    pub fn release_device(&mut self, target: &str, asset_tag: &str) -> Result<(), StateError> {
        self.write(WriteOp::ReleaseDevice {
            target: target.into(),
            asset_tag: asset_tag.into(),
        })
    }

    pub fn add_seat(&mut self, pool: &str, person_id: &str) -> Result<(), StateError> {
        self.write(WriteOp::AddSeat {
            pool: pool.into(),
            person_id: person_id.into(),
        })
    }

    pub fn remove_seat(&mut self, pool: &str, person_id: &str) -> Result<(), StateError> {
        self.write(WriteOp::RemoveSeat {
            pool: pool.into(),
            person_id: person_id.into(),
        })
    }

    pub fn set_bundle(&mut self, person_id: &str, fingerprint: &str) -> Result<(), StateError> {
        self.write(WriteOp::SetBundle {
            person_id: person_id.into(),
            fingerprint: fingerprint.into(),
        })
    }

    // ---- reads --------------------------------------------------------

    /// The store's part of what is observed: persons, accounts, peers, seats.
    /// Foreign usernames and addresses and the stock come from the targets.
    pub fn observed(&self) -> Result<Observed, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| s.call(pg::observed));
        let mut observed = Observed {
            persons: self.persons()?,
            ..Observed::default()
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT target, {ACCOUNT_COLUMNS} FROM accounts ORDER BY target, person_id"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let target: String = row.get(0)?;
            let (person_id, account) = account(row, 1)?;
            observed
                .accounts
                .entry(target)
                .or_default()
                .insert(person_id, account);
        }
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT target, {PEER_COLUMNS} FROM peers ORDER BY target, person_id"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let target: String = row.get(0)?;
            let (person_id, peer, _) = peer(row, 1)?;
            observed
                .peers
                .entry(target)
                .or_default()
                .insert(person_id, peer);
        }
        observed.seats = self.seats()?;
        let mut stmt = conn.prepare_cached(
            "SELECT target, person_id, serial, not_after, access_end FROM certificates
             WHERE revoked IS NULL ORDER BY issued, serial",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let not_after: String = row.get(3)?;
            // Oldest first: a newer certificate of the same person wins.
            observed
                .certificates
                .entry(row.get(0)?)
                .or_default()
                .insert(
                    row.get(1)?,
                    IssuedCert {
                        serial: row.get(2)?,
                        not_after: columns::parse_timestamp(&not_after)?.date_naive(),
                        access_end: columns::parse_date(row.get(4)?)?,
                    },
                );
        }
        Ok(observed)
    }

    pub fn person(&self, id: &str) -> Result<Option<KnownPerson>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let id = id.to_string();
            s.call(move |c| pg::person(c, &id))
        });
        let mut stmt = conn.prepare_cached(
            "SELECT id, username, display_name, profile, withdrawn, offboarded FROM persons WHERE id = ?1",
        )?;
        Ok(stmt
            .query_row([id], known_person)
            .optional()?
            .map(|(_, person)| person))
    }

    /// Every person homebase has provisioned, by staff id.
    pub fn persons(&self) -> Result<BTreeMap<String, KnownPerson>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| s.call(pg::persons));
        let mut stmt = conn.prepare_cached(
            "SELECT id, username, display_name, profile, withdrawn, offboarded FROM persons ORDER BY id",
        )?;
        let persons = stmt.query_map([], known_person)?;
        Ok(persons.collect::<Result<_, _>>()?)
    }

    /// The target's accounts, ordered by username.
    pub fn accounts(&self, target: &str) -> Result<Vec<(String, Account)>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let t = target.to_string();
            s.call(move |c| pg::accounts(c, &t))
        });
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE target = ?1 ORDER BY username"
        ))?;
        let mut rows = stmt.query([target])?;
        let mut accounts = Vec::new();
        while let Some(row) = rows.next()? {
            accounts.push(account(row, 0)?);
        }
        Ok(accounts)
    }

    /// The id the remote directory gave the person's account, if recorded.
    pub fn remote_id(&self, target: &str, person_id: &str) -> Result<Option<String>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let (t, p) = (target.to_string(), person_id.to_string());
            s.call(move |c| pg::remote_id(c, &t, &p))
        });
        let mut stmt = conn.prepare_cached(
            "SELECT remote_id FROM accounts WHERE target = ?1 AND person_id = ?2",
        )?;
        Ok(stmt
            .query_row([target, person_id], |row| row.get(0))
            .optional()?
            .flatten())
    }

    /// The target's peers as (staff id, peer, public key), ordered by address.
    pub fn peers(&self, target: &str) -> Result<Vec<(String, Peer, String)>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let t = target.to_string();
            s.call(move |c| pg::peers(c, &t))
        });
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PEER_COLUMNS} FROM peers WHERE target = ?1"
        ))?;
        let mut rows = stmt.query([target])?;
        let mut peers = Vec::new();
        while let Some(row) = rows.next()? {
            peers.push(peer(row, 0)?);
        }
        // Numeric order: 10.0.0.2 before 10.0.0.10.
        peers.sort_by_key(|(_, peer, _)| peer.address);
        Ok(peers)
    }

    /// Addresses of peers that existed before homebase took them over.
    pub fn adopted_addresses(&self, target: &str) -> Result<BTreeSet<IpAddr>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let t = target.to_string();
            s.call(move |c| pg::adopted_addresses(c, &t))
        });
        let mut stmt =
            conn.prepare_cached("SELECT address FROM peers WHERE target = ?1 AND adopted = 1")?;
        let mut rows = stmt.query([target])?;
        let mut addresses = BTreeSet::new();
        while let Some(row) = rows.next()? {
            let text: String = row.get(0)?;
            addresses.insert(columns::parse_address(&text)?);
        }
        Ok(addresses)
    }

    /// Who holds which device of the target: asset tag → staff id.
    pub fn device_assignments(&self, target: &str) -> Result<BTreeMap<String, String>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let t = target.to_string();
            s.call(move |c| pg::device_assignments(c, &t))
        });
        let mut stmt =
            conn.prepare_cached("SELECT asset_tag, person_id FROM devices WHERE target = ?1")?;
        let rows = stmt.query_map([target], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The target's devices that are out, as (staff id, device), by asset tag.
    pub fn devices(&self, target: &str) -> Result<Vec<(String, Device)>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let t = target.to_string();
            s.call(move |c| pg::devices(c, &t))
        });
        let mut stmt = conn.prepare_cached(
            "SELECT person_id, asset_tag, serial, kind, model FROM devices
             WHERE target = ?1 ORDER BY asset_tag",
        )?;
        let rows = stmt.query_map([target], |row| {
            Ok((
                row.get(0)?,
                Device {
                    asset_tag: row.get(1)?,
                    serial: row.get(2)?,
                    kind: row.get(3)?,
                    model: row.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Seat pool → staff ids holding a seat.
    pub fn seats(&self) -> Result<BTreeMap<String, BTreeSet<String>>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| s.call(pg::seats));
        let mut stmt =
            conn.prepare_cached("SELECT pool, person_id FROM seats ORDER BY pool, person_id")?;
        let mut rows = stmt.query([])?;
        let mut seats: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            seats.entry(row.get(0)?).or_default().insert(row.get(1)?);
        }
        Ok(seats)
    }

    /// The certificates an openvpn target issued, oldest first.
    pub fn certificates(&self, target: &str) -> Result<Vec<Certificate>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| {
            let t = target.to_string();
            s.call(move |c| pg::certificates(c, &t))
        });
        super::certificates::list(conn, target)
    }

    /// Staff ids whose delivered bundle no longer shows their access: it
    /// changed in a run on a machine without the bundle.
    pub fn stale_bundles(&self) -> Result<BTreeSet<String>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| s.call(pg::stale_bundles));
        let mut stmt = conn.prepare_cached("SELECT person_id FROM bundles WHERE stale = 1")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Staff id → fingerprint of the access their bundle was written from:
    /// every bundle ever completed (delivered), wherever it is now.
    pub fn bundle_fingerprints(&self) -> Result<BTreeMap<String, String>, StateError> {
        let conn = sqlite_or!(self, |s: &PgSession| s.call(pg::bundle_fingerprints));
        let mut stmt = conn.prepare_cached("SELECT person_id, fingerprint FROM bundles")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let (false, Backend::Sqlite(conn)) = (self.read_only, &self.backend) {
            connect::leave_wal(conn);
        }
    }
}

const ACCOUNT_COLUMNS: &str = "person_id, username, given_name, family_name, display_name, \
     email, department, groups, ou, expires, enabled";

fn account(row: &Row<'_>, at: usize) -> Result<(String, Account), StateError> {
    let groups: String = row.get(at + 7)?;
    Ok((
        row.get(at)?,
        Account {
            username: row.get(at + 1)?,
            given_name: row.get(at + 2)?,
            family_name: row.get(at + 3)?,
            display_name: row.get(at + 4)?,
            email: row.get(at + 5)?,
            department: row.get(at + 6)?,
            groups: columns::parse_groups(&groups)?,
            ou: row.get(at + 8)?,
            expires: columns::parse_date(row.get(at + 9)?)?,
            enabled: row.get(at + 10)?,
        },
    ))
}

const PEER_COLUMNS: &str = "person_id, address, preshared_key, expires, public_key, adopted";

fn peer(row: &Row<'_>, at: usize) -> Result<(String, Peer, String), StateError> {
    let address: String = row.get(at + 1)?;
    let public_key: String = row.get(at + 4)?;
    let adopted: bool = row.get(at + 5)?;
    Ok((
        row.get(at)?,
        Peer {
            address: columns::parse_address(&address)?,
            preshared_key: row.get(at + 2)?,
            expires: columns::parse_date(row.get(at + 3)?)?,
            adopted_key: adopted.then(|| public_key.clone()),
            // The tunnel mode is the profile's; the store does not keep it.
            full_tunnel: false,
        },
        public_key,
    ))
}

fn known_person(row: &Row<'_>) -> rusqlite::Result<(String, KnownPerson)> {
    Ok((
        row.get(0)?,
        KnownPerson {
            username: row.get(1)?,
            display_name: row.get(2)?,
            profile: row.get(3)?,
            withdrawn: row.get(4)?,
            offboarded: row.get(5)?,
        },
    ))
}
