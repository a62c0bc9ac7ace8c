//! Where the state lives: a SQLite file (the embedded default) or a
//! PostgreSQL database and schema (`state: postgres://…`, CI runners and teams).
//!
//! The password never comes from the URL or the YAML: from `password_file`,
//! `password_env`, `PGPASSWORD`, or a libpq password file (`PGPASSFILE`,
//! `~/.pgpass`). TLS is verified (`sslmode=verify-full`, the default), against
//! `ca_file` / `sslrootcert` / `PGSSLROOTCERT` or the system's trust store.

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `state:` in homebase.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StateConfig {
    /// A SQLite file (relative to homebase.yaml), or a `postgres://` URL.
    Location(String),
    /// A PostgreSQL server with its options.
    Server(StateServer),
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig::Location(".homebase/state.db".to_string())
    }
}

/// A PostgreSQL state store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateServer {
    /// `postgres://USER@HOST:PORT/DB?sslmode=verify-full`, without a password.
    pub url: String,
    /// The schema of this organisation's state (several share one database).
    #[serde(default)]
    pub schema: Option<String>,
    /// CA certificates (PEM) that sign the server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Environment variable holding the password [default: PGPASSWORD].
    #[serde(default)]
    pub password_env: Option<String>,
    /// File whose first line is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// The schema when none is named.
pub const DEFAULT_SCHEMA: &str = "homebase";

/// Resolved: where the state is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PgLocation>),
}

#[derive(Clone, PartialEq, Eq)]
pub struct PgLocation {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub schema: String,
    /// `None`: `sslmode=disable`.
    pub tls: Option<Tls>,
    pub password: Option<Password>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// `None`: the system's trust store.
    pub ca_file: Option<PathBuf>,
}

/// The password, kept out of `Debug` and every message.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgLocation({self})")
    }
}

impl fmt::Display for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgres://{}@{}:{}/{} schema {}",
            self.user, self.host, self.port, self.dbname, self.schema
        )
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(pg) => write!(f, "{pg}"),
        }
    }
}

impl Location {
    /// From `state:` (or `HOMEBASE_STATE`, which replaces its path or URL);
    /// `resolve` makes a relative path absolute against homebase.yaml's folder.
    /// Errors are for the admin (bad input: exit 2).
    pub fn resolve(
        config: &StateConfig,
        env_override: Option<String>,
        resolve: impl Fn(&Path) -> PathBuf,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Location, String> {
        let (text, server) = match config {
            StateConfig::Location(text) => (text.clone(), None),
            StateConfig::Server(server) => (server.url.clone(), Some(server)),
        };
        let text = env_override
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(text);
        if !is_url(&text) {
            if server.is_some() {
                return Err(format!(
                    "state: `url` must be a postgres:// URL, not {text:?}"
                ));
            }
            return Ok(Location::Sqlite(resolve(Path::new(&text))));
        }
        let url = parse_url(&text)?;
        let schema = url
            .schema
            .clone()
            .or_else(|| server.and_then(|s| s.schema.clone()))
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        check_schema(&schema)?;
        let tls = match url.sslmode.as_deref().unwrap_or("verify-full") {
            "disable" => None,
            "verify-full" => Some(Tls {
                ca_file: server
                    .and_then(|s| s.ca_file.as_deref())
                    .map(&resolve)
                    .or_else(|| url.sslrootcert.as_deref().map(PathBuf::from))
                    .or_else(|| var("PGSSLROOTCERT").map(PathBuf::from)),
            }),
            other => {
                return Err(format!(
                    "state: sslmode={other} is not supported; use sslmode=verify-full \
                     (TLS with the server's certificate checked), or sslmode=disable on a trusted loopback"
                ))
            }
        };
        let mut location = PgLocation {
            host: url.host,
            port: url.port,
            user: url
                .user
                .or_else(|| var("PGUSER"))
                .unwrap_or_else(|| "postgres".into()),
            dbname: url.dbname,
            schema,
            tls,
            password: None,
        };
        if location.dbname.is_empty() {
            location.dbname = location.user.clone();
        }
        location.password = password(server, &location, &resolve, &var)?;
        Ok(Location::Postgres(Box::new(location)))
    }

    /// The SQLite file, if the state is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }
}

pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// A schema name homebase creates and quotes: plain lower-case identifiers only.
fn check_schema(schema: &str) -> Result<(), String> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(format!(
            "state: schema {schema:?} is not a plain name (a-z, 0-9, _; up to 63; not pg_…)"
        ))
    }
}

struct Url {
    user: Option<String>,
    host: String,
    port: u16,
    dbname: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    schema: Option<String>,
}

fn parse_url(text: &str) -> Result<Url, String> {
    let rest = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
        .ok_or_else(|| "state: not a postgres:// URL".to_string())?;
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if userinfo.is_some_and(|u| u.contains(':')) {
        return Err("state: the URL holds a password; never put it on the command line or in homebase.yaml — \
             set PGPASSWORD, a libpq password file (PGPASSFILE), or `password_env` / `password_file`"
            .to_string());
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("state: port {p:?} is not a number"))?,
        ),
        _ => (hostport, 5432),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("state: the URL names no host".to_string());
    }
    let mut url = Url {
        user: userinfo.map(decode).filter(|u| !u.is_empty()),
        host: decode(host),
        port,
        dbname: decode(path),
        sslmode: None,
        sslrootcert: None,
        schema: None,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value);
        match key {
            "sslmode" => url.sslmode = Some(value),
            "sslrootcert" => url.sslrootcert = Some(value),
            "schema" => url.schema = Some(value),
            "password" => {
                return Err(
                    "state: the URL holds a password; set PGPASSWORD or a password file instead"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                "state: URL parameter {other:?} is not supported (sslmode, sslrootcert, schema)"
            ))
            }
        }
    }
    Ok(url)
}

/// Percent-decoding of URL parts.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn password(
    server: Option<&StateServer>,
    location: &PgLocation,
    resolve: &impl Fn(&Path) -> PathBuf,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Password>, String> {
    if let Some(file) = server.and_then(|s| s.password_file.as_deref()) {
        let path = resolve(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("state: cannot read password_file {}: {e}", path.display()))?;
        let line = text.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            return Err(format!("state: password_file {} is empty", path.display()));
        }
        return Ok(Some(Password(line)));
    }
    if let Some(name) = server.and_then(|s| s.password_env.as_deref()) {
        return match var(name) {
            Some(value) if !value.is_empty() => Ok(Some(Password(value))),
            _ => Err(format!(
                "state: password_env names {name}, which is not set"
            )),
        };
    }
    if let Some(value) = var("PGPASSWORD").filter(|v| !v.is_empty()) {
        return Ok(Some(Password(value)));
    }
    let passfile = var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".pgpass")));
    if let Some(path) = passfile {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(pgpass_lookup(&text, location).map(Password));
        }
    }
    Ok(None)
}

/// The first matching line of a libpq password file
/// (`host:port:database:user:password`, `*` matches anything, `\:` escapes).
fn pgpass_lookup(text: &str, at: &PgLocation) -> Option<String> {
    let port = at.port.to_string();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut current = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        fields.push(current);
        if fields.len() != 5 {
            continue;
        }
        let wanted = [at.host.as_str(), &port, &at.dbname, &at.user];
        if fields[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(config: StateConfig, vars: &[(&str, &str)]) -> Result<Location, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Location::resolve(
            &config,
            None,
            |p| Path::new("/etc/homebase").join(p),
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        )
    }

    #[test]
    fn a_path_is_sqlite_relative_to_the_config() {
        let location = resolve_with(StateConfig::default(), &[]).unwrap();
        assert_eq!(
            location,
            Location::Sqlite(PathBuf::from("/etc/homebase/.homebase/state.db"))
        );
    }

    #[test]
    fn a_url_is_postgres_verified_by_default_with_the_password_from_the_environment() {
        let location = resolve_with(
            StateConfig::Location("postgres://hb@127.0.0.1:55432/state?schema=org_a".into()),
            &[("PGPASSWORD", "s3cret")],
        )
        .unwrap();
        let Location::Postgres(pg) = location else {
            panic!("not postgres")
        };
        assert_eq!(
            (pg.host.as_str(), pg.port, pg.user.as_str()),
            ("127.0.0.1", 55432, "hb")
        );
        assert_eq!((pg.dbname.as_str(), pg.schema.as_str()), ("state", "org_a"));
        assert_eq!(pg.tls, Some(Tls { ca_file: None }));
        assert_eq!(pg.password, Some(Password("s3cret".into())));
        let shown = format!("{pg} {pg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn passwords_in_the_url_and_weak_tls_are_refused() {
        for url in [
            "postgres://hb:pw@host/db",
            "postgres://hb@host/db?password=pw",
            "postgres://hb@host/db?sslmode=require",
            "postgres://hb@host/db?schema=Robert');DROP",
        ] {
            let err = resolve_with(StateConfig::Location(url.into()), &[]).unwrap_err();
            assert!(!err.contains("pw") || err.contains("password"), "{err}");
        }
    }

    #[test]
    fn the_server_form_takes_schema_ca_and_a_password_variable() {
        let config = StateConfig::Server(StateServer {
            url: "postgresql://hb@db.example/hb?sslmode=verify-full".into(),
            schema: Some("stadt".into()),
            ca_file: Some("ca.pem".into()),
            password_env: Some("HB_PW".into()),
            password_file: None,
        });
        let Location::Postgres(pg) = resolve_with(config.clone(), &[("HB_PW", "x")]).unwrap()
        else {
            panic!("not postgres")
        };
        assert_eq!(pg.port, 5432);
        assert_eq!(pg.schema, "stadt");
        assert_eq!(
            pg.tls,
            Some(Tls {
                ca_file: Some("/etc/homebase/ca.pem".into())
            })
        );
        let err = resolve_with(config, &[]).unwrap_err();
        assert!(err.contains("HB_PW"), "{err}");
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let at = PgLocation {
            host: "127.0.0.1".into(),
            port: 55432,
            user: "hb".into(),
            dbname: "state".into(),
            schema: "homebase".into(),
            tls: None,
            password: None,
        };
        let text = "# comment\nother:5432:*:*:no\n127.0.0.1:55432:*:hb:pa\\:ss\n";
        assert_eq!(pgpass_lookup(text, &at).as_deref(), Some("pa:ss"));
        assert_eq!(pgpass_lookup("*:*:*:someone:x\n", &at), None);
    }
}
