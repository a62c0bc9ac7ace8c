//! Reads of the PostgreSQL state, returning what the SQLite reads return.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use postgres::Row;

use crate::plan::{Account, Device, IssuedCert, KnownPerson, Observed, Peer};

use super::super::audit::{
    parse_op, Entry, EntryOutcome, JournalRecord, ResourceKind, RunInfo, RunOutcome, RunRecord,
};
use super::super::certificates::Certificate;
use super::super::columns;
use super::super::StateError;
use super::connect::{PgConn, Stmts};
use super::write::err;

fn query(
    conn: &mut PgConn,
    sql: &'static str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, StateError> {
    let PgConn { client, stmts } = conn;
    query_with(client, stmts, sql, params)
}

fn query_with(
    client: &mut postgres::Client,
    stmts: &mut Stmts,
    sql: &'static str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, StateError> {
    stmts.query(client, sql, params).map_err(err)
}

/// Reads a column, a type mismatch being a corrupt store.
fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, at: usize) -> Result<T, StateError> {
    row.try_get(at)
        .map_err(|e| columns::corrupt("column", &at.to_string(), e))
}

pub fn observed(conn: &mut PgConn) -> Result<Observed, StateError> {
    let mut observed = Observed {
        persons: persons(conn)?,
        ..Observed::default()
    };
    for row in query(
        conn,
        "SELECT target, person_id, username, given_name, family_name, display_name, email,
             department, groups, ou, expires, enabled FROM accounts ORDER BY target, person_id",
        &[],
    )? {
        let (person_id, account) = account(&row, 1)?;
        observed
            .accounts
            .entry(get(&row, 0)?)
            .or_default()
            .insert(person_id, account);
    }
    for row in query(
        conn,
        "SELECT target, person_id, address, preshared_key, expires, public_key, adopted
         FROM peers ORDER BY target, person_id",
        &[],
    )? {
        let (person_id, peer, _) = peer(&row, 1)?;
        observed
            .peers
            .entry(get(&row, 0)?)
            .or_default()
            .insert(person_id, peer);
    }
    observed.seats = seats(conn)?;
    for row in query(
        conn,
        "SELECT target, person_id, serial, not_after, access_end FROM certificates
         WHERE revoked IS NULL ORDER BY issued, serial",
        &[],
    )? {
        let not_after: String = get(&row, 3)?;
        observed
            .certificates
            .entry(get(&row, 0)?)
            .or_default()
            .insert(
                get(&row, 1)?,
                IssuedCert {
                    serial: get(&row, 2)?,
                    not_after: columns::parse_timestamp(&not_after)?.date_naive(),
                    access_end: columns::parse_date(get(&row, 4)?)?,
                },
            );
    }
    Ok(observed)
}

pub fn person(conn: &mut PgConn, id: &str) -> Result<Option<KnownPerson>, StateError> {
    let rows = query(
        conn,
        "SELECT id, username, display_name, profile, withdrawn, offboarded FROM persons WHERE id = $1",
        &[&id],
    )?;
    rows.first()
        .map(|row| known_person(row).map(|(_, p)| p))
        .transpose()
}

pub fn persons(conn: &mut PgConn) -> Result<BTreeMap<String, KnownPerson>, StateError> {
    query(
        conn,
        "SELECT id, username, display_name, profile, withdrawn, offboarded FROM persons ORDER BY id",
        &[],
    )?
    .iter()
    .map(known_person)
    .collect()
}

pub fn accounts(conn: &mut PgConn, target: &str) -> Result<Vec<(String, Account)>, StateError> {
    query(
        conn,
        "SELECT person_id, username, given_name, family_name, display_name, email,
             department, groups, ou, expires, enabled FROM accounts WHERE target = $1 ORDER BY username",
        &[&target],
    )?
    .iter()
    .map(|row| account(row, 0))
    .collect()
}

pub fn remote_id(
    conn: &mut PgConn,
    target: &str,
    person_id: &str,
) -> Result<Option<String>, StateError> {
    let rows = query(
        conn,
        "SELECT remote_id FROM accounts WHERE target = $1 AND person_id = $2",
        &[&target, &person_id],
    )?;
    Ok(match rows.first() {
        Some(row) => get(row, 0)?,
        None => None,
    })
}

pub fn peers(conn: &mut PgConn, target: &str) -> Result<Vec<(String, Peer, String)>, StateError> {
    let mut peers = query(
        conn,
        "SELECT person_id, address, preshared_key, expires, public_key, adopted
         FROM peers WHERE target = $1",
        &[&target],
    )?
    .iter()
    .map(|row| peer(row, 0))
    .collect::<Result<Vec<_>, _>>()?;
    peers.sort_by_key(|(_, peer, _)| peer.address);
    Ok(peers)
}

pub fn adopted_addresses(conn: &mut PgConn, target: &str) -> Result<BTreeSet<IpAddr>, StateError> {
    query(
        conn,
        "SELECT address FROM peers WHERE target = $1 AND adopted",
        &[&target],
    )?
    .iter()
    .map(|row| columns::parse_address(&get::<String>(row, 0)?))
    .collect()
}

pub fn device_assignments(
    conn: &mut PgConn,
    target: &str,
) -> Result<BTreeMap<String, String>, StateError> {
    query(
        conn,
        "SELECT asset_tag, person_id FROM devices WHERE target = $1",
        &[&target],
    )?
    .iter()
    .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
    .collect()
}

pub fn devices(conn: &mut PgConn, target: &str) -> Result<Vec<(String, Device)>, StateError> {
    query(
        conn,
        "SELECT person_id, asset_tag, serial, kind, model FROM devices
         WHERE target = $1 ORDER BY asset_tag",
        &[&target],
    )?
    .iter()
    .map(|row| {
        Ok((
            get(row, 0)?,
            Device {
                asset_tag: get(row, 1)?,
                serial: get(row, 2)?,
                kind: get(row, 3)?,
                model: get(row, 4)?,
            },
        ))
    })
    .collect()
}

pub fn seats(conn: &mut PgConn) -> Result<BTreeMap<String, BTreeSet<String>>, StateError> {
    let mut seats: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in query(
        conn,
        "SELECT pool, person_id FROM seats ORDER BY pool, person_id",
        &[],
    )? {
        seats
            .entry(get(&row, 0)?)
            .or_default()
            .insert(get(&row, 1)?);
    }
    Ok(seats)
}

pub fn certificates(conn: &mut PgConn, target: &str) -> Result<Vec<Certificate>, StateError> {
    query(
        conn,
        "SELECT serial, person_id, not_after, access_end, revoked, superseded
         FROM certificates WHERE target = $1 ORDER BY issued, serial",
        &[&target],
    )?
    .iter()
    .map(|row| {
        let not_after: String = get(row, 2)?;
        let revoked: Option<String> = get(row, 4)?;
        Ok(Certificate {
            serial: get(row, 0)?,
            person_id: get(row, 1)?,
            not_after: columns::parse_timestamp(&not_after)?,
            access_end: columns::parse_date(get(row, 3)?)?,
            revoked: revoked
                .as_deref()
                .map(columns::parse_timestamp)
                .transpose()?,
            superseded: get(row, 5)?,
        })
    })
    .collect()
}

pub fn bundle_fingerprints(conn: &mut PgConn) -> Result<BTreeMap<String, String>, StateError> {
    query(conn, "SELECT person_id, fingerprint FROM bundles", &[])?
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
        .collect()
}

pub fn stale_bundles(conn: &mut PgConn) -> Result<BTreeSet<String>, StateError> {
    query(conn, "SELECT person_id FROM bundles WHERE stale", &[])?
        .iter()
        .map(|row| get(row, 0))
        .collect()
}

// ---- audit ------------------------------------------------------------

pub fn begin_run(conn: &mut PgConn, info: &RunInfo) -> Result<i64, StateError> {
    let rows = query(
        conn,
        "INSERT INTO runs (\"user\", host, ci_job, command, plan_digest, started)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            &info.user,
            &info.host,
            &info.ci_job,
            &info.command,
            &info.plan_digest,
            &columns::timestamp(info.started),
        ],
    )?;
    rows.first()
        .map(|row| get(row, 0))
        .ok_or_else(|| StateError::Commit("no run id returned".into()))?
}

pub fn finish_run(
    conn: &mut PgConn,
    run_id: i64,
    outcome: RunOutcome,
    ok_count: u64,
    failed_count: u64,
) -> Result<(), StateError> {
    let PgConn { client, stmts } = conn;
    let changed = stmts
        .execute(
            client,
            "UPDATE runs SET finished = $2, outcome = $3, ok_count = $4, failed_count = $5
             WHERE id = $1",
            &[
                &run_id,
                &columns::timestamp(chrono::Utc::now()),
                &outcome.name(),
                &i64::try_from(ok_count).unwrap_or(i64::MAX),
                &i64::try_from(failed_count).unwrap_or(i64::MAX),
            ],
        )
        .map_err(err)?;
    if changed == 0 {
        return Err(StateError::UnknownRun { id: run_id });
    }
    Ok(())
}

const RUN_SELECT_LIMIT: &str =
    "SELECT r.id, r.\"user\", r.host, r.ci_job, r.command, r.plan_digest,
        r.started, r.finished, r.outcome, r.ok_count, r.failed_count,
        (SELECT count(*) FROM journal j WHERE j.run_id = r.id AND j.outcome = 'ok'),
        (SELECT count(*) FROM journal j WHERE j.run_id = r.id AND j.outcome = 'failed')
    FROM runs r ORDER BY r.id DESC LIMIT $1";

const RUN_SELECT_ONE: &str = "SELECT r.id, r.\"user\", r.host, r.ci_job, r.command, r.plan_digest,
        r.started, r.finished, r.outcome, r.ok_count, r.failed_count,
        (SELECT count(*) FROM journal j WHERE j.run_id = r.id AND j.outcome = 'ok'),
        (SELECT count(*) FROM journal j WHERE j.run_id = r.id AND j.outcome = 'failed')
    FROM runs r WHERE r.id = $1";

pub fn history(conn: &mut PgConn, limit: usize) -> Result<Vec<RunRecord>, StateError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    query(conn, RUN_SELECT_LIMIT, &[&limit])?
        .iter()
        .map(run_record)
        .collect()
}

pub fn run(conn: &mut PgConn, run_id: i64) -> Result<Option<RunRecord>, StateError> {
    query(conn, RUN_SELECT_ONE, &[&run_id])?
        .first()
        .map(run_record)
        .transpose()
}

pub fn journal_for(conn: &mut PgConn, person_id: &str) -> Result<Vec<JournalRecord>, StateError> {
    query(
        conn,
        "SELECT id, run_id, person_id, target, resource, op, outcome, message, at
         FROM journal WHERE person_id = $1 ORDER BY id",
        &[&person_id],
    )?
    .iter()
    .map(|row| {
        let at: String = get(row, 8)?;
        Ok(JournalRecord {
            id: get(row, 0)?,
            entry: Entry {
                run_id: get(row, 1)?,
                person_id: get(row, 2)?,
                target: get(row, 3)?,
                resource: ResourceKind::parse(&get::<String>(row, 4)?)?,
                op: parse_op(&get::<String>(row, 5)?)?,
                outcome: EntryOutcome::parse(&get::<String>(row, 6)?)?,
                message: get(row, 7)?,
                at: columns::parse_timestamp(&at)?,
            },
        })
    })
    .collect()
}

fn run_record(row: &Row) -> Result<RunRecord, StateError> {
    let started: String = get(row, 6)?;
    let finished: Option<String> = get(row, 7)?;
    let outcome: Option<String> = get(row, 8)?;
    let count = |at: usize| -> Result<u64, StateError> {
        Ok(u64::try_from(get::<i64>(row, at)?).unwrap_or(0))
    };
    Ok(RunRecord {
        id: get(row, 0)?,
        info: RunInfo {
            user: get(row, 1)?,
            host: get(row, 2)?,
            ci_job: get(row, 3)?,
            command: get(row, 4)?,
            plan_digest: get(row, 5)?,
            started: columns::parse_timestamp(&started)?,
        },
        finished: finished
            .as_deref()
            .map(columns::parse_timestamp)
            .transpose()?,
        outcome: outcome.as_deref().map(RunOutcome::parse).transpose()?,
        ok_count: count(9)?,
        failed_count: count(10)?,
        journaled_ok: count(11)?,
        journaled_failed: count(12)?,
    })
}

fn account(row: &Row, at: usize) -> Result<(String, Account), StateError> {
    let groups: String = get(row, at + 7)?;
    Ok((
        get(row, at)?,
        Account {
            username: get(row, at + 1)?,
            given_name: get(row, at + 2)?,
            family_name: get(row, at + 3)?,
            display_name: get(row, at + 4)?,
            email: get(row, at + 5)?,
            department: get(row, at + 6)?,
            groups: columns::parse_groups(&groups)?,
            ou: get(row, at + 8)?,
            expires: columns::parse_date(get(row, at + 9)?)?,
            enabled: get(row, at + 10)?,
        },
    ))
}

fn peer(row: &Row, at: usize) -> Result<(String, Peer, String), StateError> {
    let address: String = get(row, at + 1)?;
    let public_key: String = get(row, at + 4)?;
    let adopted: bool = get(row, at + 5)?;
    Ok((
        get(row, at)?,
        Peer {
            address: columns::parse_address(&address)?,
            preshared_key: get(row, at + 2)?,
            expires: columns::parse_date(get(row, at + 3)?)?,
            adopted_key: adopted.then(|| public_key.clone()),
            // The tunnel mode is the profile's; the store does not keep it.
            full_tunnel: false,
        },
        public_key,
    ))
}

fn known_person(row: &Row) -> Result<(String, KnownPerson), StateError> {
    Ok((
        get(row, 0)?,
        KnownPerson {
            username: get(row, 1)?,
            display_name: get(row, 2)?,
            profile: get(row, 3)?,
            withdrawn: get(row, 4)?,
            offboarded: get(row, 5)?,
        },
    ))
}
