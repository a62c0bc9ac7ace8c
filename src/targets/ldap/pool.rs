//! A small pool of bound connections. Operations are spread over them round
//! robin; each connection multiplexes the operations given to it (ldap3 keeps
//! several in flight on one socket). A connection that fails at the transport
//! level is dropped and opened anew, with a fresh bind, on its next use — so a
//! restarted server is picked up by the executor's retries.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use tokio::sync::Mutex;

use super::classify::{check, code_of, is_transient_code, is_transport, rc};
use super::config::{Resolved, Secret, TlsMode};
use crate::adaptive::{Limiter, Outcome, Permit};
use crate::targets::common::Trace;

/// Permissive Modify (supported by OpenLDAP, Active Directory and Samba):
/// adding a value that is there, or deleting one that is not, succeeds.
const PERMISSIVE_MODIFY: &str = "1.2.840.113556.1.4.1413";

/// An attribute with its values, as `add` takes it.
pub type Attrs = Vec<(Vec<u8>, HashSet<Vec<u8>>)>;

struct Endpoint {
    url: String,
    tls: TlsMode,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    bind_dn: String,
    bind_password: Secret,
    connect_timeout: Duration,
}

struct Slot {
    generation: u64,
    ldap: Option<Ldap>,
}

pub struct Pool {
    endpoint: Arc<Endpoint>,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
    timeout: Duration,
    page_size: i32,
    /// Every operation waits for room under the target's limit.
    limiter: Arc<Limiter>,
    trace: Trace,
}

/// One connection handed out for an operation or a few.
pub struct Conn<'p> {
    pool: &'p Pool,
    slot: usize,
    generation: u64,
    ldap: Ldap,
}

impl Pool {
    /// Open the first connection now (connect + bind: the health check);
    /// the others on first use.
    pub async fn open(
        cfg: &Resolved,
        tls_config: Option<Arc<rustls::ClientConfig>>,
        limiter: Arc<Limiter>,
        trace: Trace,
    ) -> Result<Pool, LdapError> {
        let endpoint = Arc::new(Endpoint {
            url: cfg.url.clone(),
            tls: cfg.tls,
            tls_config,
            bind_dn: cfg.bind_dn.clone(),
            bind_password: cfg.bind_password.clone(),
            connect_timeout: cfg.connect_timeout,
        });
        let first = endpoint.connect().await?;
        let slots = (0..cfg.pool_size)
            .map(|i| {
                Mutex::new(Slot {
                    generation: 0,
                    ldap: (i == 0).then(|| first.clone()),
                })
            })
            .collect();
        Ok(Pool {
            endpoint,
            slots,
            next: AtomicUsize::new(0),
            timeout: cfg.timeout,
            page_size: cfg.page_size,
            limiter,
            trace,
        })
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// A connection, opened (again) if its slot has none or a closed one.
    pub async fn get(&self) -> Result<Conn<'_>, LdapError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut guard = self.slots[slot].lock().await;
        if let Some(ldap) = &guard.ldap {
            let mut ldap = ldap.clone();
            if !ldap.is_closed() {
                return Ok(Conn {
                    pool: self,
                    slot,
                    generation: guard.generation,
                    ldap,
                });
            }
        }
        guard.ldap = None;
        let ldap = self.endpoint.connect().await?;
        guard.generation += 1;
        guard.ldap = Some(ldap.clone());
        Ok(Conn {
            pool: self,
            slot,
            generation: guard.generation,
            ldap,
        })
    }

    /// Forget a connection that failed, unless it was replaced meanwhile.
    async fn discard(&self, slot: usize, generation: u64) {
        let mut guard = self.slots[slot].lock().await;
        if guard.generation == generation {
            guard.ldap = None;
        }
    }
}

impl Endpoint {
    async fn connect(&self) -> Result<Ldap, LdapError> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.connect_timeout);
        if let Some(config) = &self.tls_config {
            settings = settings.set_config(config.clone());
        }
        if self.tls == TlsMode::StartTls {
            settings = settings.set_starttls(true);
        }
        let (conn, mut ldap) = tokio::time::timeout(
            self.connect_timeout,
            LdapConnAsync::with_settings(settings, &self.url),
        )
        .await??;
        tokio::spawn(async move {
            // The connection's driver ends when the socket closes; the
            // handles then fail with a transport error and are replaced.
            let _ = conn.drive().await;
        });
        let bound = ldap
            .with_timeout(self.connect_timeout)
            .simple_bind(&self.bind_dn, self.bind_password.expose())
            .await?;
        check(bound)?;
        Ok(ldap)
    }
}

impl Conn<'_> {
    async fn permit(&self) -> (Permit, Instant) {
        let permit = self.pool.limiter.acquire().await;
        (permit, self.pool.trace.start())
    }

    /// Teach the limit how the operation went; drop a broken connection;
    /// the `-vv` line (operation and DN or filter, never values).
    async fn outcome<T>(
        &self,
        (permit, started): (Permit, Instant),
        request: impl FnOnce() -> String,
        result: Result<T, LdapError>,
    ) -> Result<T, LdapError> {
        if self.pool.trace.is_on() {
            let answer = match &result {
                Ok(_) => "success".to_string(),
                Err(err) => err.to_string(),
            };
            self.pool.trace.done(request(), answer, started);
        }
        let overload = result
            .as_ref()
            .err()
            .is_some_and(|err| is_transport(err) || code_of(err).is_some_and(is_transient_code));
        permit.finish(if overload {
            Outcome::Overload
        } else {
            Outcome::Answered
        });
        if let Err(err) = &result {
            if is_transport(err) {
                self.pool.discard(self.slot, self.generation).await;
            }
        }
        result
    }

    pub async fn add(&mut self, dn: &str, attrs: Attrs) -> Result<(), LdapError> {
        let timeout = self.pool.timeout;
        let permit = self.permit().await;
        let result = async {
            check(self.ldap.with_timeout(timeout).add(dn, attrs).await?)?;
            Ok(())
        }
        .await;
        self.outcome(permit, || format!("add {dn}"), result).await
    }

    /// Modify; `permissive` makes adding a present value and deleting an
    /// absent one succeed (group membership).
    pub async fn modify(
        &mut self,
        dn: &str,
        mods: Vec<Mod<Vec<u8>>>,
        permissive: bool,
    ) -> Result<(), LdapError> {
        let timeout = self.pool.timeout;
        let permit = self.permit().await;
        let result = async {
            let ldap = self.ldap.with_timeout(timeout);
            if permissive {
                ldap.with_controls(RawControl {
                    ctype: PERMISSIVE_MODIFY.to_string(),
                    crit: false,
                    val: None,
                });
            }
            check(ldap.modify(dn, mods).await?)?;
            Ok(())
        }
        .await;
        self.outcome(permit, || format!("modify {dn}"), result)
            .await
    }

    pub async fn delete(&mut self, dn: &str) -> Result<(), LdapError> {
        let timeout = self.pool.timeout;
        let permit = self.permit().await;
        let result = async {
            check(self.ldap.with_timeout(timeout).delete(dn).await?)?;
            Ok(())
        }
        .await;
        self.outcome(permit, || format!("delete {dn}"), result)
            .await
    }

    /// Move an entry below `new_parent`, keeping its RDN.
    pub async fn move_entry(
        &mut self,
        dn: &str,
        rdn: &str,
        new_parent: &str,
    ) -> Result<(), LdapError> {
        let timeout = self.pool.timeout;
        let permit = self.permit().await;
        let result = async {
            check(
                self.ldap
                    .with_timeout(timeout)
                    .modifydn(dn, rdn, true, Some(new_parent))
                    .await?,
            )?;
            Ok(())
        }
        .await;
        self.outcome(permit, || format!("move {dn} below {new_parent}"), result)
            .await
    }

    /// One entry by DN, or `None` if there is none.
    pub async fn lookup(
        &mut self,
        dn: &str,
        attrs: &[&str],
    ) -> Result<Option<SearchEntry>, LdapError> {
        let timeout = self.pool.timeout;
        let permit = self.permit().await;
        let result = async {
            let found = self
                .ldap
                .with_timeout(timeout)
                .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
                .await?;
            match found.1.rc {
                rc::SUCCESS => Ok(found.0.into_iter().next().map(SearchEntry::construct)),
                rc::NO_SUCH_OBJECT => Ok(None),
                _ => Err(LdapError::LdapResult { result: found.1 }),
            }
        }
        .await;
        self.outcome(permit, || format!("read {dn}"), result).await
    }

    /// Every entry below `base` that matches, page by page. A missing base
    /// is an empty result.
    pub async fn search_all(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let timeout = self.pool.timeout;
        let permit = self.permit().await;
        let page_size = self.pool.page_size;
        let attrs: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
        let result = async {
            let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(page_size)),
            ];
            let mut stream = self
                .ldap
                .with_timeout(timeout)
                .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
                .await?;
            let mut entries = Vec::new();
            while let Some(entry) = stream.next().await? {
                entries.push(SearchEntry::construct(entry));
            }
            let done = stream.finish().await;
            match done.rc {
                rc::SUCCESS => Ok(entries),
                rc::NO_SUCH_OBJECT => Ok(Vec::new()),
                _ => Err(LdapError::LdapResult { result: done }),
            }
        }
        .await;
        self.outcome(permit, || format!("search {base} {filter}"), result)
            .await
    }
}
