//! The whole state as plain data, the same from either backend: `state dump`
//! writes it as JSON (a backup; no secret exists in it to leak), `state
//! migrate` copies it into another store and compares the content digests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::StateError;

pub const DUMP_SCHEMA: &str = "homebase.state/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dump {
    /// Always [`DUMP_SCHEMA`].
    pub schema: String,
    /// The store's schema version (the same numbers on both backends).
    pub version: i64,
    /// SHA-256 of `tables` as canonical JSON.
    pub digest: String,
    /// Table → rows in primary-key order, each column → value.
    pub tables: BTreeMap<String, Vec<BTreeMap<String, Value>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    OptText,
    Int,
    Bool,
}

pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub order: &'static str,
}

use Kind::*;

/// Every table with content, in the order rows can be inserted (the ones
/// referred to first). The lock holders are not state.
pub const TABLES: &[Table] = &[
    Table {
        name: "persons",
        columns: &[
            ("id", Text),
            ("username", Text),
            ("display_name", Text),
            ("profile", Text),
            ("withdrawn", Bool),
            ("offboarded", Bool),
            ("created", Text),
            ("updated", Text),
        ],
        order: "id",
    },
    Table {
        name: "runs",
        columns: &[
            ("id", Int),
            ("user", Text),
            ("host", Text),
            ("ci_job", OptText),
            ("command", Text),
            ("plan_digest", OptText),
            ("started", Text),
            ("finished", OptText),
            ("outcome", OptText),
            ("ok_count", Int),
            ("failed_count", Int),
        ],
        order: "id",
    },
    Table {
        name: "accounts",
        columns: &[
            ("target", Text),
            ("person_id", Text),
            ("username", Text),
            ("given_name", Text),
            ("family_name", Text),
            ("display_name", Text),
            ("email", Text),
            ("department", OptText),
            ("groups", Text),
            ("ou", OptText),
            ("expires", OptText),
            ("enabled", Bool),
            ("remote_id", OptText),
            ("updated", Text),
        ],
        order: "target, person_id",
    },
    Table {
        name: "peers",
        columns: &[
            ("target", Text),
            ("person_id", Text),
            ("address", Text),
            ("public_key", Text),
            ("preshared_key", Bool),
            ("expires", OptText),
            ("adopted", Bool),
            ("updated", Text),
        ],
        order: "target, person_id",
    },
    Table {
        name: "devices",
        columns: &[
            ("target", Text),
            ("asset_tag", Text),
            ("serial", Text),
            ("kind", Text),
            ("model", Text),
            ("person_id", Text),
            ("assigned", Text),
        ],
        order: "target, asset_tag",
    },
    Table {
        name: "seats",
        columns: &[("pool", Text), ("person_id", Text), ("added", Text)],
        order: "pool, person_id",
    },
    Table {
        name: "bundles",
        columns: &[
            ("person_id", Text),
            ("fingerprint", Text),
            ("updated", Text),
            ("stale", Bool),
        ],
        order: "person_id",
    },
    Table {
        name: "certificates",
        columns: &[
            ("target", Text),
            ("serial", Text),
            ("person_id", Text),
            ("issued", Text),
            ("not_after", Text),
            ("access_end", OptText),
            ("revoked", OptText),
            ("superseded", Bool),
        ],
        order: "target, serial",
    },
    Table {
        name: "journal",
        columns: &[
            ("id", Int),
            ("run_id", Int),
            ("person_id", OptText),
            ("target", Text),
            ("resource", Text),
            ("op", Text),
            ("outcome", Text),
            ("message", Text),
            ("at", Text),
        ],
        order: "id",
    },
];

impl Table {
    /// `SELECT` of every column in key order (identifiers quoted: `user`).
    pub fn select(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.quoted_columns(),
            self.name,
            self.order
        )
    }

    /// `INSERT` with `?N` (SQLite) or `$N` (PostgreSQL) placeholders.
    pub fn insert(&self, marker: char) -> String {
        let params: Vec<String> = (1..=self.columns.len())
            .map(|n| format!("{marker}{n}"))
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name,
            self.quoted_columns(),
            params.join(", ")
        )
    }

    fn quoted_columns(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// SHA-256 of the tables as canonical JSON (ordered maps, rows in key order).
pub fn digest(tables: &BTreeMap<String, Vec<BTreeMap<String, Value>>>) -> String {
    let json = serde_json::to_vec(tables).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&json)))
}

impl Dump {
    pub fn new(version: i64, tables: BTreeMap<String, Vec<BTreeMap<String, Value>>>) -> Dump {
        Dump {
            schema: DUMP_SCHEMA.to_string(),
            version,
            digest: digest(&tables),
            tables,
        }
    }

    pub fn rows(&self) -> usize {
        self.tables.values().map(Vec::len).sum()
    }
}

/// A value of a dumped row, checked against its column's kind.
pub fn value<'a>(
    row: &'a BTreeMap<String, Value>,
    table: &str,
    column: &str,
    kind: Kind,
) -> Result<&'a Value, StateError> {
    let value = row.get(column).unwrap_or(&Value::Null);
    let fits = match kind {
        Text => value.is_string(),
        OptText => value.is_string() || value.is_null(),
        Int => value.is_i64(),
        Bool => value.is_boolean(),
    };
    if fits {
        Ok(value)
    } else {
        Err(StateError::Corrupt {
            what: format!("{table}.{column} in the dump"),
            detail: format!("{value} is not a {kind:?}"),
        })
    }
}

pub mod sqlite {
    //! Dump and load on the SQLite file.

    use std::collections::BTreeMap;

    use rusqlite::types::Value as Sql;
    use rusqlite::Connection;
    use serde_json::Value;

    use super::{value, Dump, Kind, TABLES};
    use crate::state::StateError;

    pub fn dump(conn: &Connection) -> Result<Dump, StateError> {
        let mut tables = BTreeMap::new();
        for table in TABLES {
            let mut stmt = conn.prepare(&table.select())?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut map = BTreeMap::new();
                for (at, (name, kind)) in table.columns.iter().enumerate() {
                    let v = match kind {
                        Kind::Text | Kind::OptText => row
                            .get::<_, Option<String>>(at)?
                            .map_or(Value::Null, Value::String),
                        Kind::Int => Value::from(row.get::<_, i64>(at)?),
                        Kind::Bool => Value::Bool(row.get::<_, bool>(at)?),
                    };
                    map.insert((*name).to_string(), v);
                }
                out.push(map);
            }
            tables.insert(table.name.to_string(), out);
        }
        Ok(Dump::new(crate::state::schema::version(conn)?, tables))
    }

    /// Inserts every row in one transaction (the store must be empty).
    pub fn load(conn: &mut Connection, dump: &Dump) -> Result<(), StateError> {
        let tx = conn.transaction()?;
        for table in TABLES {
            let mut stmt = tx.prepare(&table.insert('?'))?;
            for row in dump.tables.get(table.name).into_iter().flatten() {
                let mut params = Vec::with_capacity(table.columns.len());
                for (name, kind) in table.columns {
                    params.push(match value(row, table.name, name, *kind)? {
                        Value::String(s) => Sql::Text(s.clone()),
                        Value::Bool(b) => Sql::Integer(i64::from(*b)),
                        Value::Number(n) => Sql::Integer(n.as_i64().unwrap_or_default()),
                        _ => Sql::Null,
                    });
                }
                stmt.execute(rusqlite::params_from_iter(params))?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

pub mod postgres {
    //! Dump and load on PostgreSQL.

    use std::collections::BTreeMap;

    use postgres::types::ToSql;
    use serde_json::Value;

    use super::{value, Dump, Kind, TABLES};
    use crate::state::postgres::connect::PgConn;
    use crate::state::postgres::write::err;
    use crate::state::StateError;

    pub fn dump(conn: &mut PgConn, version: i64) -> Result<Dump, StateError> {
        let mut tables = BTreeMap::new();
        // One snapshot of all tables.
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(err)?;
        for table in TABLES {
            let mut out = Vec::new();
            for row in tx.query(&table.select(), &[]).map_err(err)? {
                let mut map = BTreeMap::new();
                for (at, (name, kind)) in table.columns.iter().enumerate() {
                    let v = match kind {
                        Kind::Text | Kind::OptText => row
                            .try_get::<_, Option<String>>(at)
                            .map_err(err)?
                            .map_or(Value::Null, Value::String),
                        Kind::Int => Value::from(row.try_get::<_, i64>(at).map_err(err)?),
                        Kind::Bool => Value::Bool(row.try_get::<_, bool>(at).map_err(err)?),
                    };
                    map.insert((*name).to_string(), v);
                }
                out.push(map);
            }
            tables.insert(table.name.to_string(), out);
        }
        tx.commit().map_err(err)?;
        Ok(Dump::new(version, tables))
    }

    /// Inserts every row in one transaction (the schema must be empty), and
    /// moves the id sequences past the copied ids.
    pub fn load(conn: &mut PgConn, dump: &Dump) -> Result<(), StateError> {
        let mut tx = conn.client.transaction().map_err(err)?;
        for table in TABLES {
            let stmt = tx.prepare(&table.insert('$')).map_err(err)?;
            for row in dump.tables.get(table.name).into_iter().flatten() {
                let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
                for (name, kind) in table.columns {
                    let v = value(row, table.name, name, *kind)?;
                    params.push(match kind {
                        Kind::Text | Kind::OptText => Box::new(v.as_str().map(str::to_string)),
                        Kind::Int => Box::new(v.as_i64().unwrap_or_default()),
                        Kind::Bool => Box::new(v.as_bool().unwrap_or_default()),
                    });
                }
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
                tx.execute(&stmt, &refs).map_err(err)?;
            }
        }
        tx.batch_execute(
            "SELECT setval(pg_get_serial_sequence('runs', 'id'), coalesce(max(id), 0) + 1, false) FROM runs;
             SELECT setval(pg_get_serial_sequence('journal', 'id'), coalesce(max(id), 0) + 1, false) FROM journal;",
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}
