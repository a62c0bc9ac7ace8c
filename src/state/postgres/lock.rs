//! The run lock on PostgreSQL: a session advisory lock per schema, held by a
//! connection of its own for the whole run. Every runner that shares the
//! state sees it; when the holder dies (even by SIGKILL) its connection
//! closes and the server releases the lock.

use std::time::{Duration, Instant};

use super::super::location::PgLocation;
use super::super::StateError;
use super::connect::{connect, pg, PgConn};
use super::schema::{lock_key, migrate, LOCK_CLASS};

/// How often a waiting runner asks again.
const POLL: Duration = Duration::from_millis(250);

pub struct PgLock {
    conn: PgConn,
    location: PgLocation,
}

impl std::fmt::Debug for PgLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgLock({})", self.location)
    }
}

impl PgLock {
    /// Takes the schema's lock, waiting up to `wait`; `holder` describes us
    /// to whoever is refused meanwhile.
    pub fn acquire(
        location: &PgLocation,
        holder: &str,
        wait: Option<Duration>,
    ) -> Result<PgLock, StateError> {
        let mut conn = connect(location, "lock")?;
        // The holders' table comes with the schema.
        migrate(&mut conn.client, location)?;
        let key = lock_key(&location.schema);
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            let taken: bool = conn
                .client
                .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK_CLASS, &key])
                .map_err(|e| pg(location, e))?
                .get(0);
            if taken {
                conn.client
                    .execute(
                        "INSERT INTO lock_holders (backend_pid, holder) VALUES (pg_backend_pid(), $1)
                         ON CONFLICT (backend_pid) DO UPDATE SET holder = excluded.holder",
                        &[&holder],
                    )
                    .map_err(|e| pg(location, e))?;
                return Ok(PgLock {
                    conn,
                    location: location.clone(),
                });
            }
            if deadline.is_some_and(|d| Instant::now() < d) {
                std::thread::sleep(POLL);
                continue;
            }
            let holder = current_holder(&mut conn, location, key)?;
            return Err(StateError::Locked {
                place: location.to_string(),
                holder: match wait {
                    Some(w) => format!("{holder}; waited {}s", w.as_secs()),
                    None => holder,
                },
            });
        }
    }
}

/// Who holds the lock now, as its holder recorded it.
fn current_holder(
    conn: &mut PgConn,
    location: &PgLocation,
    key: i32,
) -> Result<String, StateError> {
    let row = conn
        .client
        .query_opt(
            "SELECT l.pid, h.holder FROM pg_locks l
             LEFT JOIN lock_holders h ON h.backend_pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&i64::from(LOCK_CLASS), &i64::from(key)],
        )
        .map_err(|e| pg(location, e))?;
    Ok(match row {
        Some(row) => match row.get::<_, Option<String>>(1) {
            Some(holder) => holder,
            None => format!(
                "server process {}, holder not recorded yet",
                row.get::<_, i32>(0)
            ),
        },
        None => "the holder has just finished; try again".to_string(),
    })
}

impl Drop for PgLock {
    fn drop(&mut self) {
        // Best effort: closing the connection releases the lock anyway.
        let _ = self
            .conn
            .client
            .batch_execute("DELETE FROM lock_holders WHERE backend_pid = pg_backend_pid()");
        let _ = self.conn.client.execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&LOCK_CLASS, &lock_key(&self.location.schema)],
        );
    }
}
