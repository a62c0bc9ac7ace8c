//! The journal's connection to PostgreSQL: the async client on a runtime of
//! the journal's writer thread, so that a commit's statements go to the
//! server back to back (pipelined) instead of one round trip each.
//!
//! A commit is then `BEGIN` and every statement in one flight, the answers
//! checked, and `COMMIT` (two round trips however many statements). The
//! server runs the statements in the order they were sent, in one
//! transaction: what is committed is exactly what the same statements one
//! by one would have committed. If any statement fails or misses its
//! [`Expect`], the transaction is rolled back and the journal redoes the
//! batch one statement at a time (through [`Db`]), where each refusal gets
//! its typed error.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use postgres::types::ToSql;
use postgres::{Row, Statement};
use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

use super::super::location::PgLocation;
use super::super::StateError;
use super::connect::{config, describe, search_path, Db};
use super::write::{Expect, Step};

pub struct Pipe {
    runtime: Runtime,
    client: Client,
    prepared: HashMap<&'static str, Statement>,
}

/// How a pipelined batch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Flight {
    /// Every statement did what it had to; committed.
    Committed,
    /// A statement failed or missed its expectation; rolled back.
    Refused,
}

type Answer<'a> = Pin<Box<dyn Future<Output = Result<u64, postgres::Error>> + 'a>>;

enum Sent<'a> {
    Waiting(Answer<'a>),
    Done(Result<u64, postgres::Error>),
}

impl Pipe {
    /// Connects (TLS and password as every connection of the state), with
    /// the schema as the search path. Creates nothing.
    pub fn connect(location: &PgLocation, purpose: &str) -> Result<Pipe, StateError> {
        let failed = |detail: String| StateError::PgConnect {
            location: location.to_string(),
            detail,
        };
        let (config, tls) = config(location, purpose)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let client = runtime
            .block_on(async {
                // The connection runs as a task of this runtime, driven
                // whenever the writer thread waits in `block_on`.
                let client = match tls {
                    None => {
                        let (client, connection) = config.connect(NoTls).await?;
                        tokio::spawn(connection);
                        client
                    }
                    Some(tls) => {
                        let (client, connection) = config.connect(tls).await?;
                        tokio::spawn(connection);
                        client
                    }
                };
                client.batch_execute(&search_path(location)).await?;
                Ok(client)
            })
            .map_err(|e: postgres::Error| failed(describe(&e)))?;
        Ok(Pipe {
            runtime,
            client,
            prepared: HashMap::new(),
        })
    }

    /// The statement for `sql`, prepared on first use (one round trip, once
    /// per connection).
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(stmt) = self.prepared.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.runtime.block_on(self.client.prepare(sql))?;
        self.prepared.insert(sql, stmt.clone());
        Ok(stmt)
    }

    /// Runs `steps` in one transaction, all sent before any answer is read;
    /// commits if every one did what it had to. An `Err` is a failure of
    /// the connection or of the commit itself: nothing is known to be
    /// written.
    pub fn fly(&mut self, steps: &[Step]) -> Result<Flight, postgres::Error> {
        let statements = steps
            .iter()
            .map(|step| self.statement(step.sql))
            .collect::<Result<Vec<_>, _>>()?;
        let client = &self.client;
        self.runtime.block_on(async {
            let mut answers: Vec<Answer<'_>> = Vec::with_capacity(steps.len() + 1);
            answers.push(Box::pin(async {
                client.batch_execute("BEGIN").await.map(|()| 0)
            }));
            for (step, statement) in steps.iter().zip(&statements) {
                let params: Vec<&(dyn ToSql + Sync)> = step
                    .params
                    .iter()
                    .map(|p| &**p as &(dyn ToSql + Sync))
                    .collect();
                answers.push(match step.expect {
                    Expect::Nothing => Box::pin(async move {
                        let rows = client.query(statement, &params).await?;
                        Ok(rows.len() as u64)
                    }),
                    Expect::Any | Expect::Changed => {
                        Box::pin(async move { client.execute(statement, &params).await })
                    }
                });
            }
            // Sent in this order: the client sends a request when its
            // future is first polled.
            let mut sent = Vec::with_capacity(answers.len());
            for mut answer in answers {
                sent.push(match send(&mut answer).await {
                    Some(done) => Sent::Done(done),
                    None => Sent::Waiting(answer),
                });
            }
            let mut all_done = true;
            let mut broken = None;
            for (i, sent) in sent.into_iter().enumerate() {
                let answer = match sent {
                    Sent::Done(answer) => answer,
                    Sent::Waiting(answer) => answer.await,
                };
                let fine = match (answer, i.checked_sub(1).map(|s| steps[s].expect)) {
                    (Ok(_), None | Some(Expect::Any)) => true,
                    (Ok(changed), Some(Expect::Changed)) => changed > 0,
                    (Ok(found), Some(Expect::Nothing)) => found == 0,
                    (Err(e), expect) => {
                        // A refusal of the server leaves the connection
                        // usable; anything else (I/O, closed) does not. Nor
                        // does a refused BEGIN: whatever it let run did so
                        // outside the transaction (it cannot happen on an
                        // idle connection, where BEGIN has nothing to refuse).
                        if (e.as_db_error().is_none() || expect.is_none()) && broken.is_none() {
                            broken = Some(e);
                        }
                        false
                    }
                };
                all_done &= fine;
            }
            if let Some(e) = broken {
                // Ends the transaction, if there is one and a connection.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
            if all_done {
                client.batch_execute("COMMIT").await?;
                Ok(Flight::Committed)
            } else {
                client.batch_execute("ROLLBACK").await?;
                Ok(Flight::Refused)
            }
        })
    }
}

/// Polls `answer` once, which sends its request; its answer if it already
/// has one.
async fn send<T>(answer: &mut Pin<Box<dyn Future<Output = T> + '_>>) -> Option<T> {
    poll_fn(|cx| {
        Poll::Ready(match answer.as_mut().poll(cx) {
            Poll::Ready(value) => Some(value),
            Poll::Pending => None,
        })
    })
    .await
}

/// One statement at a time, waiting for each answer: the careful redo of a
/// refused batch.
impl Db for Pipe {
    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.runtime
            .block_on(self.client.execute(&statement, params))
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.runtime.block_on(self.client.query(&statement, params))
    }

    fn command(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.runtime.block_on(self.client.batch_execute(sql))
    }
}
