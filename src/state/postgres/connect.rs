//! One connection to the PostgreSQL state: TLS verified with rustls (ring,
//! like every other connection homebase makes), the password never shown,
//! the organisation's schema on the search path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement};
use rustls::ClientConfig;

use super::super::location::PgLocation;
use super::super::StateError;

/// A connection and the statements prepared on it (once per session: each
/// statement after the first costs one round trip, not two).
pub struct PgConn {
    pub client: Client,
    pub stmts: Stmts,
}

pub struct Stmts {
    prepared: HashMap<&'static str, Statement>,
    /// Each constraint-checked write in a savepoint of its own, so that a
    /// refused one leaves the transaction usable (see `write::savepoint`).
    pub careful: bool,
}

impl Default for Stmts {
    fn default() -> Self {
        Stmts {
            prepared: HashMap::new(),
            careful: true,
        }
    }
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

/// Connects, with the schema as the search path. Creates nothing.
pub fn connect(location: &PgLocation, purpose: &str) -> Result<PgConn, StateError> {
    let mut config = postgres::Config::new();
    config
        .host(&location.host)
        .port(location.port)
        .user(&location.user)
        .dbname(&location.dbname)
        .application_name(&format!("homebase {purpose}"))
        .connect_timeout(Duration::from_secs(10))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if let Some(password) = &location.password {
        config.password(&password.0);
    }
    let connected = match &location.tls {
        None => {
            config.ssl_mode(SslMode::Disable);
            config.connect(NoTls)
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
            config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                Arc::unwrap_or_clone(rustls),
            ))
        }
    };
    let mut client = connected.map_err(|source| StateError::PgConnect {
        location: location.to_string(),
        detail: describe(&source),
    })?;
    // The schema name is checked to be a plain identifier (location.rs).
    client
        .batch_execute(&format!("SET search_path TO \"{}\"", location.schema))
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
