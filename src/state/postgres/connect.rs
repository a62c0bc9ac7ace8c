//! One connection to the PostgreSQL state: TLS verified with rustls (ring,
//! like every other connection homebase makes), the password never shown,
//! the organisation's schema on the search path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};
use rustls::ClientConfig;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::super::location::PgLocation;
use super::super::StateError;

/// A connection and the statements prepared on it (once per session: each
/// statement after the first costs one round trip, not two).
pub struct PgConn {
    pub client: Client,
    pub stmts: Stmts,
}

#[derive(Default)]
pub struct Stmts {
    prepared: HashMap<&'static str, Statement>,
}

impl Stmts {
    pub fn get<C: GenericClient>(
        &mut self,
        client: &mut C,
        sql: &'static str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(stmt) = self.prepared.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = client.prepare(sql)?;
        self.prepared.insert(sql, stmt.clone());
        Ok(stmt)
    }

    pub fn execute<C: GenericClient>(
        &mut self,
        client: &mut C,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let stmt = self.get(client, sql)?;
        client.execute(&stmt, params)
    }

    pub fn query<C: GenericClient>(
        &mut self,
        client: &mut C,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let stmt = self.get(client, sql)?;
        client.query(&stmt, params)
    }
}

/// What the writes (`write.rs`) need of a connection that is inside a
/// transaction: statements prepared once per connection, and plain commands
/// (savepoints). Served by the blocking client ([`InTx`]) and by the
/// journal's pipelining one (`pipeline::Pipe`).
pub trait Db {
    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error>;
    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error>;
    fn command(&mut self, sql: &str) -> Result<(), postgres::Error>;
}

/// A transaction of the blocking client and the connection's statements.
pub struct InTx<'a, 'b> {
    pub tx: &'a mut Transaction<'b>,
    pub stmts: &'a mut Stmts,
}

impl Db for InTx<'_, '_> {
    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        self.stmts.execute(self.tx, sql, params)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.stmts.query(self.tx, sql, params)
    }

    fn command(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.tx.batch_execute(sql)
    }
}

/// The client settings of a connection to `location` (without TLS), and the
/// TLS connector when the location asks for TLS.
pub fn config(
    location: &PgLocation,
    purpose: &str,
) -> Result<(tokio_postgres::Config, Option<MakeRustlsConnect>), StateError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&location.host)
        .port(location.port)
        .user(&location.user)
        .dbname(&location.dbname)
        .application_name(format!("homebase {purpose}"))
        .connect_timeout(Duration::from_secs(10))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if let Some(password) = &location.password {
        config.password(&password.0);
    }
    match &location.tls {
        None => {
            config.ssl_mode(SslMode::Disable);
            Ok((config, None))
        }
        Some(tls) => {
            // Require, and the rustls verifier checks chain and host name:
            // libpq's verify-full.
            config.ssl_mode(SslMode::Require);
            let rustls =
                client_config(tls.ca_file.as_deref()).map_err(|detail| StateError::PgConnect {
                    location: location.to_string(),
                    detail,
                })?;
            Ok((
                config,
                Some(MakeRustlsConnect::new(Arc::unwrap_or_clone(rustls))),
            ))
        }
    }
}

/// The statement that puts the organisation's schema on the search path
/// (the name is checked to be a plain identifier in location.rs).
pub fn search_path(location: &PgLocation) -> String {
    format!("SET search_path TO \"{}\"", location.schema)
}

/// Connects, with the schema as the search path. Creates nothing.
pub fn connect(location: &PgLocation, purpose: &str) -> Result<PgConn, StateError> {
    let (config, tls) = config(location, purpose)?;
    let config = postgres::Config::from(config);
    let connected = match tls {
        None => config.connect(NoTls),
        Some(tls) => config.connect(tls),
    };
    let mut client = connected.map_err(|source| StateError::PgConnect {
        location: location.to_string(),
        detail: describe(&source),
    })?;
    client
        .batch_execute(&search_path(location))
        .map_err(|source| pg(location, source))?;
    Ok(PgConn {
        client,
        stmts: Stmts::default(),
    })
}

/// A PostgreSQL error as the admin reads it (the server's message, if any).
pub fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(inner) = source {
                text.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            text
        }
    }
}

pub fn pg(location: &PgLocation, source: postgres::Error) -> StateError {
    StateError::Postgres {
        location: location.to_string(),
        detail: describe(&source),
    }
}

/// The same verified TLS as every target's.
fn client_config(ca_file: Option<&std::path::Path>) -> Result<Arc<ClientConfig>, String> {
    crate::targets::common::tls::client_config(ca_file).map(Arc::new)
}
