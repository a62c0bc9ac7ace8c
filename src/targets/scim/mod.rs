//! The `scim` directory target: SCIM 2.0 service providers (RFC 7643/7644).
//!
//! - **Discovery.** `connect` reads `/ServiceProviderConfig` (it doubles as
//!   the health check and the token check), `/ResourceTypes` and `/Schemas`
//!   and adapts: PUT where PATCH is missing or answers 501, `If-Match` where
//!   ETags are offered, page sizes capped by `maxResults`, Bulk within
//!   `maxOperations`/`maxPayloadSize`, attributes the server does not store
//!   left out (`capabilities.rs`; docs/scim.md says what decides what).
//! - **One read.** The plan's paged read of all users and groups is kept
//!   (`index.rs`): the apply looks persons and memberships up there, never
//!   with a query per person, and never trusts a filter the server may ignore.
//! - **Idempotence.** `externalId` is the staff id. An account found by it is
//!   taken over as it is (no rename; the bundle's new password only when the
//!   plan created it and a crashed run got there first); a 409 on create adopts the
//!   account that holds the userName when it is ours or nobody's. Updates
//!   PATCH only the attributes that differ from what the server holds.
//! - **Verification.** Every write is compared with what the server holds
//!   afterwards (its answer, or a read back); a change it did not make fails
//!   that person's action.
//! - **Groups.** Membership is kept on the Groups (servers need not fill a
//!   user's `groups`); missing groups are created once; adds and removes of
//!   concurrent actions are coalesced into one PATCH per group, and the group
//!   is read back once per batch.
//! - `ou` and `expires` have no SCIM attribute: the state store keeps them.

mod adopt;
mod bulk;
pub mod capabilities;
pub mod client;
mod config;
pub mod filter;
mod index;
pub mod model;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{anyhow, Result};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::{Notify, OnceCell};

use self::capabilities::Stored;
use self::client::{Call, Client, ClientOptions, Reply, ScimError};
pub use self::config::ScimConfig;
use self::index::{Found, Index};
use self::model::*;
use crate::error::Failure;
use crate::plan::{Account, Observed, Op, Resource};
use crate::settings::Settings;
use crate::targets::common::batch::{Batches, Linger};
use crate::targets::{ActionContext, TargetError};

/// Users created through Bulk, in batches, and the request's limits.
type BulkCreates = (
    Batches<User, Result<String, ScimError>>,
    Arc<bulk::AdaptiveLimits>,
);

/// The longest a membership batch waits for the actions still at work.
const MEMBERS_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// What the server said it supports.
#[derive(Debug, Clone)]
pub struct Features {
    pub patch: bool,
    pub etag: bool,
    pub filter: bool,
    pub max_results: Option<usize>,
    pub bulk: Option<bulk::Limits>,
    /// What `/ResourceTypes` and `/Schemas` say the server stores.
    pub stored: Stored,
}

impl Features {
    fn from_config(spc: &ServiceProviderConfig) -> Features {
        Features {
            patch: spc.patch.supported,
            etag: spc.etag.supported,
            filter: spc.filter.supported,
            max_results: spc.filter.max_results.filter(|n| *n > 0),
            bulk: spc.bulk.supported.then(|| bulk::Limits {
                max_operations: spc.bulk.max_operations.unwrap_or(100).max(1),
                max_payload_size: spc.bulk.max_payload_size.unwrap_or(1 << 20).max(1024),
            }),
            stored: Stored::default(),
        }
    }
}

pub struct ScimTarget {
    client: Arc<Client>,
    features: Features,
    page_size: usize,
    /// Group names any profile hands out: the only memberships homebase
    /// reads, adds and removes.
    managed_groups: BTreeSet<String>,
    /// Group display name → id, found or created once per run.
    groups: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
    /// Groups this run created whose POST outlasted the request timeout
    /// (retried, or answered late), with when it was first sent: a try the
    /// server (or a proxy before it) held may still be carried out after
    /// the retry made the group, and a server that allows two groups of one
    /// name then has an empty twin. [`ScimTarget::settle_groups`] removes it.
    slow_group_posts: Mutex<Vec<(String, std::time::Instant)>>,
    request_timeout: std::time::Duration,
    /// Member changes per group id, sent together (`common/batch.rs`): a
    /// batch lingers until every action in flight waits for its
    /// memberships or pauses before a retry.
    members: Box<Batches<MemberChange, ()>>,
    /// Creations through Bulk, when configured and offered.
    creates: Option<Box<BulkCreates>>,
    /// Actions inside `apply` now, and those of them waiting for their
    /// memberships: when all are waiting, a membership batch is complete.
    active: Arc<AtomicUsize>,
    waiting: Arc<AtomicUsize>,
    /// Told whenever those counts (or the client's pausing count) change.
    changed: Arc<Notify>,
    /// The plan's read of every user and group, for the apply after it.
    index: Mutex<Option<Arc<Index>>>,
    /// Set when the server answered a user PATCH "not implemented": the
    /// rest of the run sends whole users (PUT). The same for groups.
    users_by_put: AtomicBool,
    groups_by_put: Arc<AtomicBool>,
}

/// Counts itself in while alive, and tells `changed` when it comes and goes.
struct Counted(Arc<AtomicUsize>, Arc<Notify>);

impl Counted {
    fn new(counter: &Arc<AtomicUsize>, changed: &Arc<Notify>) -> Counted {
        counter.fetch_add(1, Ordering::SeqCst);
        changed.notify_waiters();
        Counted(counter.clone(), changed.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.notify_waiters();
    }
}

/// One membership change of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub user_id: String,
    pub add: bool,
}

impl ScimTarget {
    /// Build the client, read the service provider's configuration (health
    /// and token check). Configuration problems are usage errors (exit 2).
    pub async fn connect(
        name: &str,
        config: &ScimConfig,
        settings: &Settings,
    ) -> Result<ScimTarget> {
        let usage = |message: String| anyhow::Error::from(Failure::usage(message));
        let token = config
            .token_source()
            .read(name, |p| settings.path(p), |var| std::env::var(var).ok())
            .map_err(usage)?;
        let ca_file = config.ca_file.as_deref().map(|p| settings.path(p));
        let client = Client::new(ClientOptions {
            url: &config.url,
            token,
            ca_file: ca_file.as_deref(),
            timeout: config.timeouts.timeout(),
            connect_timeout: config.timeouts.connect_timeout(),
            tries: config.request_tries,
            limiter: crate::adaptive::Limiter::new(
                config.limits.ceiling(settings.jobs),
                config.limits.adaptive(),
            ),
            trace: crate::targets::common::Trace::new(name, &settings.output),
        })
        .map_err(|e| usage(format!("target \"{name}\": {e}")))?;
        let refused = |err: ScimError| match err.status() {
            Some(401 | 403) => anyhow::Error::from(Failure::usage_with_hint(
                format!("target \"{name}\": the server refuses the token: {err}"),
                "check the token in token_env/token_file",
            )),
            Some(404) => usage(format!(
                "target \"{name}\": no SCIM service at {}: {err}",
                config.url
            )),
            _ => anyhow!(
                "target \"{name}\": the SCIM service at {} does not answer: {err}",
                config.url
            ),
        };
        let reply: Reply<ServiceProviderConfig> = client
            .send(&Call::get(&["ServiceProviderConfig"]))
            .await
            .map_err(refused)?;
        // Discovery may be open to anyone (RFC 7644 §4): check the token
        // with a query that returns nothing but the count.
        client
            .send::<Value>(&Call::get(&["Users"]).query("count", "0"))
            .await
            .map_err(refused)?;
        let spc = reply.body.unwrap_or_default();
        let mut features = Features::from_config(&spc);
        // What the server stores. Not every server offers these endpoints;
        // without them everything counts as stored, as before.
        let resource_types = client
            .send::<Value>(&Call::get(&["ResourceTypes"]))
            .await
            .ok()
            .and_then(|r| r.body);
        let schemas = client
            .send::<Value>(&Call::get(&["Schemas"]))
            .await
            .ok()
            .and_then(|r| r.body);
        features.stored = Stored::from_discovery(resource_types.as_ref(), schemas.as_ref());
        let page_size = config
            .page_size
            .max(1)
            .min(features.max_results.unwrap_or(usize::MAX));
        let client = Arc::new(client);
        let changed = client.pausing().1;
        let creates = match (&features.bulk, config.bulk) {
            (Some(limits), true) => {
                let limits = Arc::new(bulk::AdaptiveLimits::new(limits.clone()));
                let max = limits.max_operations();
                Some(Box::new((Batches::new(max, Linger::None), limits)))
            }
            _ => None,
        };
        let (active, waiting) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let members = {
            let (active, waiting) = (active.clone(), waiting.clone());
            let pausing = client.pausing().0;
            Box::new(Batches::new(
                config.members_per_patch.max(1),
                Linger::UntilReady {
                    ready: Arc::new(move || {
                        waiting.load(Ordering::SeqCst) + pausing.load(Ordering::SeqCst)
                            >= active.load(Ordering::SeqCst)
                    }),
                    changed: changed.clone(),
                    longest: MEMBERS_LINGER,
                },
            ))
        };
        let managed_groups = settings
            .profiles
            .profiles
            .values()
            .flat_map(|p| p.account.groups.iter().cloned())
            .collect();
        Ok(ScimTarget {
            client,
            features,
            page_size,
            managed_groups,
            groups: Mutex::new(HashMap::new()),
            slow_group_posts: Mutex::new(Vec::new()),
            request_timeout: config.timeouts.timeout(),
            members,
            creates,
            active,
            waiting,
            changed,
            index: Mutex::new(None),
            users_by_put: AtomicBool::new(false),
            groups_by_put: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The gate of this target's requests in flight.
    pub fn limiter(&self) -> Arc<crate::adaptive::Limiter> {
        self.client.limiter().clone()
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The accounts of persons on our books (by `externalId`), their SCIM ids,
    /// and every other userName as foreign. Store-only fields (`ou`,
    /// `expires`) come from the store's record of the account.
    ///
    /// One paged read of all users (whole resources: a PUT needs them) and
    /// all groups, kept as the index the apply looks persons up in.
    pub async fn read(&self, name: &str, observed: &mut Observed) -> Result<()> {
        let resources: Vec<Value> = self.list("Users", None, None).await?;
        let groups: Vec<Group> = self
            .list("Groups", Some("displayName,members"), None)
            .await?;
        // A user that does not read is an error, not a gap: skipped, it
        // would look missing and be created a second time.
        let users = resources
            .into_iter()
            .map(|v| serde_json::from_value::<User>(v.clone()).map(|u| (u, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("GET /Users: unexpected user in the list: {e}"))?;
        let index = Index::new(users, &groups, &self.managed_groups);
        let users = index.users();
        let stored = observed.accounts.remove(name).unwrap_or_default();
        let mut accounts = BTreeMap::new();
        let mut remote_ids = BTreeMap::new();
        let mut foreign = BTreeSet::new();
        let mut unmanaged = BTreeMap::new();
        for user in users {
            let id = user.id.clone().unwrap_or_default();
            match &user.external_id {
                Some(ext) if observed.persons.contains_key(ext) && !accounts.contains_key(ext) => {
                    let groups = index
                        .member_of
                        .get(id.as_str())
                        .map(|g| g.iter().cloned().collect())
                        .unwrap_or_default();
                    accounts.insert(ext.clone(), account_of(user, groups, stored.get(ext)));
                    remote_ids.insert(ext.clone(), id);
                }
                Some(ext) if !ext.is_empty() && !observed.persons.contains_key(ext) => {
                    // Carries a staff id nobody on our books has: a new
                    // account for that person would be a second one.
                    unmanaged
                        .entry(ext.clone())
                        .or_insert_with(|| user.user_name.clone());
                    foreign.insert(user.user_name.to_lowercase());
                }
                _ => {
                    foreign.insert(user.user_name.to_lowercase());
                }
            }
        }
        if !unmanaged.is_empty() {
            observed
                .unmanaged_accounts
                .insert(name.to_string(), unmanaged);
        }
        observed.accounts.insert(name.to_string(), accounts);
        observed.remote_ids.insert(name.to_string(), remote_ids);
        observed.foreign_usernames.insert(name.to_string(), foreign);
        if !self.features.stored.missing.is_empty() {
            observed
                .unstored_fields
                .insert(name.to_string(), self.features.stored.missing.clone());
        }
        *self.index.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(index));
        Ok(())
    }

    fn index(&self) -> Option<Arc<Index>> {
        self.index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The user carrying this staff id: from the plan's read where there
    /// was one, else by asking the server.
    async fn by_external(&self, person_id: &str) -> Result<Option<Current>, TargetError> {
        let Some(index) = self.index() else {
            return Ok(self
                .find("externalId", person_id)
                .await?
                .map(Current::found));
        };
        match index.by_external(person_id) {
            Found::None => Ok(None),
            Found::One(user, resource) => Ok(Some(Current::indexed(user, resource))),
            Found::Many(n) => Err(TargetError::permanent(format!(
                "{n} users have externalId {}; homebase will not pick one",
                filter::quote(person_id)
            ))),
        }
    }

    /// The user with this SCIM id: from the plan's read, else `GET`.
    async fn by_id(&self, id: &str) -> Result<Option<Current>, TargetError> {
        if let Some((user, resource)) = self.index().as_deref().and_then(|i| i.by_id(id)) {
            return Ok(Some(Current::indexed(user, resource)));
        }
        self.get_user(id).await
    }

    /// Carry out one account action; `Ok(Some(SCIM id))`.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let Resource::Account(account) = &ctx.action.resource else {
            return Ok(None);
        };
        let _active = Counted::new(&self.active, &self.changed);
        let mut desired = desired_user(ctx.person_id, account);
        leave_out_unstored(&mut desired, &self.features.stored);
        match ctx.action.op {
            Op::Create => self.create(ctx, account, desired).await.map(Some),
            // An unchanged account is only handed over when the bundle got a
            // new password: then that is the one change.
            Op::Update | Op::Unchanged => self.update(ctx, account, desired).await.map(Some),
            Op::Remove => self.remove(ctx, account, desired).await,
        }
    }

    async fn create(
        &self,
        ctx: &ActionContext<'_>,
        account: &Account,
        mut desired: User,
    ) -> Result<String, TargetError> {
        // The plan found no account with this staff id (a lost state store
        // stops the plan and sends the admin to `adopt`), so one found now
        // is this creation's own, made by a run that died before it was
        // recorded: taken over without a new userName. Its password is the
        // one of the bundle being written, or the letter would name a
        // password nobody set.
        let password = || {
            ctx.new_secrets
                .then(|| ctx.secrets.password.clone().map(Secret::new))
                .flatten()
        };
        if let Some(found) = self.by_external(ctx.person_id).await? {
            let id = found.id().to_string();
            self.converge(found, &desired, password()).await?;
            self.join(&id, &account.groups).await?;
            return Ok(id);
        }
        desired.password = ctx.secrets.password.clone().map(Secret::new);
        let id = match self.post_user(desired.clone()).await {
            Ok(id) => id,
            Err(err) if err.status() == Some(409) => {
                let Some(found) = self.find("userName", &desired.user_name).await? else {
                    return Err(err.into());
                };
                match found.external_id.as_deref() {
                    Some(other) if other != ctx.person_id => {
                        return Err(TargetError::permanent(format!(
                            "userName \"{}\" belongs to another account (externalId \"{other}\"): {err}",
                            desired.user_name
                        )))
                    }
                    // A lost answer to our own POST: the account has this
                    // bundle's password already; set again, the letter is right
                    // whatever the first request carried.
                    _ => {
                        let id = found.id.clone().unwrap_or_default();
                        self.converge(Current::found(found), &desired, password())
                            .await?;
                        id
                    }
                }
            }
            Err(err) => return Err(err.into()),
        };
        self.join(&id, &account.groups).await?;
        Ok(id)
    }

    async fn update(
        &self,
        ctx: &ActionContext<'_>,
        account: &Account,
        desired: User,
    ) -> Result<String, TargetError> {
        let current = match &ctx.action.remote_id {
            Some(id) => self.by_id(id).await?,
            None => None,
        };
        let current = match current {
            Some(c) => Some(c),
            None => self.by_external(ctx.person_id).await?,
        };
        // Gone since the plan was made: create it again.
        let Some(current) = current else {
            return self.create(ctx, account, desired).await;
        };
        let id = current.id().to_string();
        // A new bundle (lost, or `--rotate`) carries a new password.
        let password = ctx
            .new_secrets
            .then(|| ctx.secrets.password.clone().map(Secret::new))
            .flatten();
        self.converge(current, &desired, password).await?;
        if ctx.action.changes.iter().any(|c| c.field == "groups") {
            self.sync_groups(&id, &account.groups).await?;
        }
        Ok(id)
    }

    async fn remove(
        &self,
        ctx: &ActionContext<'_>,
        account: &Account,
        desired: User,
    ) -> Result<Option<String>, TargetError> {
        let current = match &ctx.action.remote_id {
            Some(id) => self.by_id(id).await?,
            None => self.by_external(ctx.person_id).await?,
        };
        let Some(current) = current else {
            return Ok(None);
        };
        let id = current.id().to_string();
        let delete = ctx.profile.is_some_and(|p| p.account.delete_on_offboard);
        if delete {
            self.leave(&id, &account.groups).await?;
            let call = Call::new(Method::DELETE, &["Users", &id]);
            return match self.client.send::<Value>(&call).await {
                Ok(_) => Ok(None),
                Err(err) if err.status() == Some(404) => Ok(None),
                Err(err) => Err(err.into()),
            };
        }
        self.converge(current, &desired, None).await?;
        Ok(Some(id))
    }

    /// Make the server's user match `desired`: PATCH the differing
    /// attributes, or PUT the whole resource where PATCH is missing or
    /// answered "not implemented"; `If-Match` where ETags are offered. A 412
    /// means someone changed the user meanwhile: read it again, diff again,
    /// try once more. What the server answers is then compared with
    /// `desired`: a success that did not change the user is a failure.
    async fn converge(
        &self,
        mut current: Current,
        desired: &User,
        password: Option<Secret>,
    ) -> Result<(), TargetError> {
        let id = current.id().to_string();
        // Never a rename: the plan lists none, and an account found by its
        // staff id keeps the userName its owner logs in with.
        let mut desired = desired.clone();
        desired.user_name = current.user.user_name.clone();
        leave_out_unstored(&mut desired, &self.features.stored);
        let desired = &desired;
        for round in 0..2 {
            let mut ops = diff_with(&current.user, desired, &self.features.stored);
            if let Some(p) = &password {
                ops.push(PatchOperation::replace(
                    "password",
                    Value::String(p.expose().to_string()),
                ));
            }
            if ops.is_empty() {
                return Ok(());
            }
            let by_put = !self.features.patch || self.users_by_put.load(Ordering::SeqCst);
            let result = if by_put {
                self.put_user(&mut current, desired, password.as_ref())
                    .await
            } else {
                match self.patch_user(&current, &ops).await {
                    Err(err) if not_implemented(&err) => {
                        self.users_by_put.store(true, Ordering::SeqCst);
                        self.put_user(&mut current, desired, password.as_ref())
                            .await
                    }
                    other => other,
                }
            };
            match result {
                Ok(answer) => return self.verify_user(&id, answer, desired).await,
                Err(err) if err.status() == Some(412) && round == 0 => {
                    match self.get_user(&id).await? {
                        Some(fresh) => current = fresh,
                        None => return Err(TargetError::permanent(format!("user {id} is gone"))),
                    }
                }
                Err(err) if err.status() == Some(412) => {
                    return Err(TargetError::transient(format!(
                        "{err} (the user changed on the server while homebase updated it)"
                    )))
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    fn if_match<'c>(&self, current: &'c Current) -> Option<&'c str> {
        if self.features.etag {
            current.etag.as_deref()
        } else {
            None
        }
    }

    async fn patch_user(
        &self,
        current: &Current,
        ops: &[PatchOperation],
    ) -> Result<Option<Value>, ScimError> {
        let call = Call::new(Method::PATCH, &["Users", current.id()])
            .json(&PatchRequest::new(ops))
            .if_match(self.if_match(current));
        Ok(self.client.send::<Value>(&call).await?.body)
    }

    /// PUT the whole user: the server's resource with our attributes set.
    async fn put_user(
        &self,
        current: &mut Current,
        desired: &User,
        password: Option<&Secret>,
    ) -> Result<Option<Value>, ScimError> {
        let id = current.id().to_string();
        let resource = match current.resource.clone() {
            Some(r) => r,
            None => {
                let reply: Reply<Value> = self.client.send(&Call::get(&["Users", &id])).await?;
                let resource = reply.body.unwrap_or(Value::Null);
                current.etag = reply.etag.or_else(|| {
                    resource
                        .pointer("/meta/version")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                current.resource = Some(resource.clone());
                resource
            }
        };
        let call = Call::new(Method::PUT, &["Users", &id])
            .json(&put_body(resource, desired, password))
            .if_match(self.if_match(current));
        Ok(self.client.send::<Value>(&call).await?.body)
    }

    /// Compare what the server holds after a write with what was wanted:
    /// the user in the answer, or read back where the answer had none.
    async fn verify_user(
        &self,
        id: &str,
        answer: Option<Value>,
        desired: &User,
    ) -> Result<(), TargetError> {
        let answered = answer
            .and_then(|v| serde_json::from_value::<User>(v).ok())
            .filter(|u| !u.user_name.is_empty());
        let held = match answered {
            Some(user) => user,
            None => match self.get_user(id).await? {
                Some(current) => current.user,
                None => return Err(TargetError::permanent(format!("user {id} is gone"))),
            },
        };
        let left = diff_with(&held, desired, &self.features.stored);
        if left.is_empty() {
            return Ok(());
        }
        let paths: Vec<&str> = left.iter().filter_map(|op| op.path.as_deref()).collect();
        Err(TargetError::permanent(format!(
            "/Users/{id}: the server answered success but does not hold {} as sent (not applied)",
            paths.join(", ")
        )))
    }

    /// `GET /Users/ID`, `None` on 404.
    async fn get_user(&self, id: &str) -> Result<Option<Current>, TargetError> {
        match self.client.send::<Value>(&Call::get(&["Users", id])).await {
            Ok(reply) => {
                let resource = reply.body.unwrap_or(Value::Null);
                let user: User = serde_json::from_value(resource.clone()).map_err(|e| {
                    TargetError::permanent(format!("GET /Users/{id}: unexpected response: {e}"))
                })?;
                let etag = reply
                    .etag
                    .or_else(|| user.meta.as_ref().and_then(|m| m.version.clone()));
                Ok(Some(Current {
                    user,
                    etag,
                    resource: Some(resource),
                }))
            }
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The one user whose `attribute` equals `value` (a filter query, or a
    /// scan where the server cannot filter).
    async fn find(&self, attribute: &str, value: &str) -> Result<Option<User>, TargetError> {
        let matches = |u: &User| match attribute {
            "externalId" => u.external_id.as_deref() == Some(value),
            _ => u.user_name.eq_ignore_ascii_case(value),
        };
        if !self.features.filter {
            let users: Vec<User> = self.list("Users", Some(USER_ATTRIBUTES), None).await?;
            return Ok(users.into_iter().find(matches));
        }
        let call = Call::get(&["Users"]).query("filter", filter::eq(attribute, value));
        let reply: Reply<ListResponse<User>> = self.client.send(&call).await?;
        let found: Vec<User> = reply
            .body
            .map(|l| l.resources)
            .unwrap_or_default()
            .into_iter()
            .filter(matches)
            .collect();
        match found.len() {
            0 | 1 => Ok(found.into_iter().next()),
            n => Err(TargetError::permanent(format!(
                "{n} users have {attribute} {}; homebase will not pick one",
                filter::quote(value)
            ))),
        }
    }

    async fn post_user(&self, user: User) -> Result<String, ScimError> {
        if let Some(bulk) = &self.creates {
            let (creates, limits) = &**bulk;
            let write = |_, users| async move {
                bulk::post_users(&self.client, limits, users)
                    .await
                    .into_iter()
                    .map(Ok)
                    .collect()
            };
            return creates.submit("", user, write).await.unwrap_or_else(|err| {
                Err(ScimError::Transport {
                    request: "POST /Bulk".into(),
                    message: err.to_string(),
                })
            });
        }
        let reply: Reply<User> = self
            .client
            .send(&Call::new(Method::POST, &["Users"]).json(&user))
            .await?;
        reply
            .body
            .and_then(|u| u.id)
            .ok_or_else(|| ScimError::Payload {
                request: "POST /Users".into(),
                message: "no id in the created user".into(),
            })
    }

    /// Every resource of a type, page by page (`startIndex`/`count`, pages
    /// no longer than the server's `maxResults`; a shorter page than asked
    /// for is taken as the server's `itemsPerPage`).
    async fn list<T: DeserializeOwned>(
        &self,
        resource: &str,
        attributes: Option<&str>,
        filter: Option<&str>,
    ) -> Result<Vec<T>, ScimError> {
        let mut all = Vec::new();
        let mut start = 1usize;
        loop {
            let mut call = Call::get(&[resource])
                .query("startIndex", start.to_string())
                .query("count", self.page_size.to_string());
            if let Some(attributes) = attributes {
                call = call.query("attributes", attributes);
            }
            if let Some(f) = filter {
                call = call.query("filter", f);
            }
            let reply: Reply<ListResponse<T>> = self.client.send(&call).await?;
            let page = reply.body.ok_or_else(|| ScimError::Payload {
                request: format!("GET /{resource}"),
                message: "no list in the response".into(),
            })?;
            let got = page.resources.len();
            all.extend(page.resources);
            if got == 0 || start - 1 + got >= page.total_results {
                return Ok(all);
            }
            start += got;
        }
    }

    // ---- groups --------------------------------------------------------

    /// The id of the group named `name`, created if missing (once per run,
    /// however many actions ask at the same time).
    async fn group_id(&self, name: &str) -> Result<String, TargetError> {
        let cell = {
            let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
            groups.entry(name.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let indexed = self.index().and_then(|i| i.group_ids.get(name).cloned());
            if let Some(id) = indexed {
                return Ok(id);
            }
            if let Some(id) = self.find_group(name).await? {
                return Ok(id);
            }
            let group = Group {
                schemas: vec![GROUP_SCHEMA.to_string()],
                display_name: name.to_string(),
                ..Group::default()
            };
            let sent = std::time::Instant::now();
            let created = self
                .client
                .send::<Group>(&Call::new(Method::POST, &["Groups"]).json(&group))
                .await;
            if sent.elapsed() >= self.request_timeout {
                self.slow_group_posts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((name.to_string(), sent));
            }
            match created {
                Ok(reply) => reply.body.and_then(|g| g.id).ok_or_else(|| {
                    TargetError::permanent("POST /Groups: no id in the created group")
                }),
                // Created meanwhile by someone else (or by our lost response).
                Err(err) if err.status() == Some(409) => self
                    .find_group(name)
                    .await?
                    .ok_or_else(|| TargetError::from(err)),
                Err(err) => Err(err.into()),
            }
        })
        .await
        .cloned()
    }

    async fn find_group(&self, name: &str) -> Result<Option<String>, TargetError> {
        let groups: Vec<Group> = if self.features.filter {
            let call = Call::get(&["Groups"])
                .query("filter", filter::eq("displayName", name))
                .query("attributes", "displayName");
            let reply: Reply<ListResponse<Group>> = self.client.send(&call).await?;
            reply.body.map(|l| l.resources).unwrap_or_default()
        } else {
            self.list("Groups", Some("displayName"), None).await?
        };
        Ok(groups
            .into_iter()
            .find(|g| g.display_name == name)
            .and_then(|g| g.id))
    }

    /// After the run: for each group whose creation outlasted the request
    /// timeout, wait until a held try would have been carried out (five
    /// request timeouts after it was sent), then delete the empty groups of
    /// the same name that are not the one this run used.
    pub async fn settle_groups(&self) -> Result<(), TargetError> {
        let slow = std::mem::take(
            &mut *self
                .slow_group_posts
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (name, sent) in slow {
            let settled = sent + self.request_timeout * 5;
            tokio::time::sleep_until(settled.into()).await;
            let used = self
                .groups
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&name)
                .and_then(|cell| cell.get().cloned());
            let Some(used) = used else { continue };
            let twins: Vec<Group> = self
                .list("Groups", Some("displayName,members"), None)
                .await?
                .into_iter()
                .filter(|g: &Group| g.display_name == name && g.id.as_deref() != Some(&used))
                .collect();
            for twin in twins {
                let (Some(id), true) = (twin.id, twin.members.is_empty()) else {
                    continue;
                };
                let call = Call::new(Method::DELETE, &["Groups", &id]);
                match self.client.send::<Value>(&call).await {
                    Ok(_) => {}
                    Err(err) if err.status() == Some(404) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    async fn change_membership(
        &self,
        user_id: &str,
        groups: impl Iterator<Item = &String>,
        add: bool,
    ) -> Result<(), TargetError> {
        let changes = groups.map(|name| async move {
            let group_id = self.group_id(name).await?;
            let change = MemberChange {
                user_id: user_id.to_string(),
                add,
            };
            let way = Way {
                patch: self.features.patch,
                by_put: self.groups_by_put.clone(),
                etag: self.features.etag,
            };
            let write = |id: String, changes: Vec<MemberChange>| {
                let group = GroupRef {
                    id,
                    name: name.to_string(),
                };
                let way = way.clone();
                async move { change_members(&self.client, &group, &way, changes).await }
            };
            self.members.submit(&group_id, change, write).await
        });
        futures::future::try_join_all(changes).await.map(|_| ())
    }

    /// Add the user to the groups (adding a member twice changes nothing).
    async fn join(&self, user_id: &str, groups: &[String]) -> Result<(), TargetError> {
        let _waiting = Counted::new(&self.waiting, &self.changed);
        self.change_membership(user_id, groups.iter(), true).await
    }

    async fn leave(&self, user_id: &str, groups: &[String]) -> Result<(), TargetError> {
        let _waiting = Counted::new(&self.waiting, &self.changed);
        let managed = groups.iter().filter(|g| self.managed_groups.contains(*g));
        self.change_membership(user_id, managed, false).await
    }

    /// Bring the user's memberships of managed groups to `desired`, from
    /// the plan's read of the groups (never a `members.value` filter: a
    /// server that cannot filter answers it with a list, and an empty list
    /// would read as "member of nothing").
    async fn sync_groups(&self, user_id: &str, desired: &[String]) -> Result<(), TargetError> {
        let index = match self.index() {
            Some(index) => index,
            None => {
                let groups: Vec<Group> = self
                    .list("Groups", Some("displayName,members"), None)
                    .await?;
                Arc::new(Index::new(Vec::new(), &groups, &self.managed_groups))
            }
        };
        let current: BTreeSet<&String> = index
            .member_of
            .get(user_id)
            .map(|groups| groups.iter().collect())
            .unwrap_or_default();
        let wanted: BTreeSet<&String> = desired.iter().collect();
        let add = wanted.difference(&current).copied();
        let remove = current.difference(&wanted).copied();
        let _waiting = Counted::new(&self.waiting, &self.changed);
        futures::future::try_join(
            self.change_membership(user_id, add, true),
            self.change_membership(user_id, remove, false),
        )
        .await
        .map(|_| ())
    }
}

/// A user as read from the server, with its version and (for PUT) the
/// whole resource as sent.
struct Current {
    user: User,
    etag: Option<String>,
    resource: Option<Value>,
}

impl Current {
    /// A user from the plan's read: the whole resource is at hand.
    fn indexed(user: &User, resource: &Value) -> Current {
        Current {
            etag: user.meta.as_ref().and_then(|m| m.version.clone()),
            resource: Some(resource.clone()),
            user: user.clone(),
        }
    }

    /// A user from a query: its version from `meta`, no full resource.
    fn found(user: User) -> Current {
        Current {
            etag: user.meta.as_ref().and_then(|m| m.version.clone()),
            resource: None,
            user,
        }
    }

    fn id(&self) -> &str {
        self.user.id.as_deref().unwrap_or_default()
    }
}

/// The group a membership batcher changes.
#[derive(Debug, Clone)]
struct GroupRef {
    id: String,
    name: String,
}

/// How membership changes are sent: PATCH where offered and not found
/// "not implemented" in this run (`by_put`), else PUT of the whole group.
#[derive(Debug, Clone)]
struct Way {
    patch: bool,
    by_put: Arc<AtomicBool>,
    etag: bool,
}

impl Way {
    fn patch(&self) -> bool {
        self.patch && !self.by_put.load(Ordering::SeqCst)
    }
}

/// One request for a batch of membership changes of one group (PATCH, or
/// read, change and PUT the group, with `If-Match`, again on 412), then the
/// group read back: a change the server answered with success but did not
/// make fails its own person. A refused batch is retried member by member,
/// so one bad member fails only its own person.
async fn change_members(
    client: &Client,
    group: &GroupRef,
    way: &Way,
    changes: Vec<MemberChange>,
) -> Vec<Result<(), TargetError>> {
    match send_members(client, group, way, &changes).await {
        Ok(()) => verify_members(client, group, &changes).await,
        Err(err) if !err.is_transient() && changes.len() > 1 => {
            let mut results = Vec::with_capacity(changes.len());
            for change in &changes {
                let one = std::slice::from_ref(change);
                let r = match send_members(client, group, way, one).await {
                    Ok(()) => verify_members(client, group, one).await.remove(0),
                    Err(err) => Err(TargetError::from(err)),
                };
                results.push(r);
            }
            results
        }
        Err(err) => {
            let err = TargetError::from(err);
            changes.iter().map(|_| Err(err.clone())).collect()
        }
    }
}

async fn send_members(
    client: &Client,
    group: &GroupRef,
    way: &Way,
    changes: &[MemberChange],
) -> Result<(), ScimError> {
    if way.patch() {
        match patch_members(client, &group.id, changes).await {
            Err(err) if not_implemented(&err) => way.by_put.store(true, Ordering::SeqCst),
            other => return other,
        }
    }
    put_members(client, &group.id, way.etag, changes).await
}

/// Read the group back and check each change: a user is a member exactly
/// when its last change in the batch added it.
async fn verify_members(
    client: &Client,
    group: &GroupRef,
    changes: &[MemberChange],
) -> Vec<Result<(), TargetError>> {
    let call = Call::get(&["Groups", &group.id]).query("attributes", "members");
    let held: Group = match client.send::<Group>(&call).await {
        Ok(reply) => reply.body.unwrap_or_default(),
        Err(err) => {
            let err = TargetError::from(err);
            return changes.iter().map(|_| Err(err.clone())).collect();
        }
    };
    let members: BTreeSet<&str> = held.members.iter().map(|m| m.value.as_str()).collect();
    let last: HashMap<&str, bool> = changes
        .iter()
        .map(|c| (c.user_id.as_str(), c.add))
        .collect();
    changes
        .iter()
        .map(|c| {
            let add = last[c.user_id.as_str()];
            if members.contains(c.user_id.as_str()) == add {
                return Ok(());
            }
            Err(TargetError::permanent(format!(
                "group \"{}\": the server answered success but {} (read back after the change; not applied)",
                group.name,
                if add {
                    "does not list the user as a member"
                } else {
                    "still lists the user as a member"
                }
            )))
        })
        .collect()
}

/// A refusal that says the server does not implement the request (PATCH,
/// or a PATCH of these attributes): RFC 7644 gives 501; some servers
/// answer 405, or 400 with a message saying so.
pub fn not_implemented(err: &ScimError) -> bool {
    let says_so = || {
        let text = format!(
            "{} {}",
            err.scim_type().unwrap_or_default(),
            err.detail().unwrap_or_default()
        )
        .to_lowercase();
        ["not implemented", "not supported", "unsupported"]
            .iter()
            .any(|w| text.contains(w))
    };
    match err.status() {
        Some(501 | 405) => true,
        Some(400) => says_so(),
        _ => false,
    }
}

async fn patch_members(
    client: &Client,
    group_id: &str,
    changes: &[MemberChange],
) -> Result<(), ScimError> {
    let ops = member_operations(changes);
    let call = Call::new(Method::PATCH, &["Groups", group_id]).json(&PatchRequest::new(&ops));
    client.send::<Value>(&call).await.map(|_| ())
}

/// The PATCH operations of membership changes: one `add` with every new
/// member, one `remove` per leaving member (RFC 7644 §3.5.2.2 filter path).
/// A user changed twice in one batch counts once, with the last change (as
/// in [`apply_member_changes`]): a batch can hold a change whose action gave
/// up and was tried again, and a server may store a value added twice in one
/// PATCH twice.
pub fn member_operations(changes: &[MemberChange]) -> Vec<PatchOperation> {
    let mut last: HashMap<&str, bool> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for change in changes {
        if last.insert(&change.user_id, change.add).is_none() {
            order.push(&change.user_id);
        }
    }
    let added: Vec<Value> = order
        .iter()
        .filter(|id| last[*id])
        .map(|id| json!({ "value": id }))
        .collect();
    let mut ops = Vec::new();
    if !added.is_empty() {
        ops.push(PatchOperation::add("members", Value::Array(added)));
    }
    for user_id in order.iter().filter(|id| !last[*id]) {
        ops.push(PatchOperation::remove(format!(
            "members[{}]",
            filter::eq("value", user_id)
        )));
    }
    ops
}

async fn put_members(
    client: &Client,
    group_id: &str,
    etag: bool,
    changes: &[MemberChange],
) -> Result<(), ScimError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let reply: Reply<Value> = client.send(&Call::get(&["Groups", group_id])).await?;
        let mut group = reply.body.unwrap_or(Value::Null);
        let version = reply.etag.or_else(|| {
            group
                .pointer("/meta/version")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        apply_member_changes(&mut group, changes);
        let call = Call::new(Method::PUT, &["Groups", group_id])
            .json(&group)
            .if_match(if etag { version.as_deref() } else { None });
        match client.send::<Value>(&call).await {
            Err(err) if err.status() == Some(412) && tries < 3 => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Change the `members` of a group resource in place.
pub fn apply_member_changes(group: &mut Value, changes: &[MemberChange]) {
    let Value::Object(map) = group else {
        return;
    };
    let mut members: Vec<Value> = match map.remove("members") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    for change in changes {
        let is_it = |m: &Value| m.get("value").and_then(Value::as_str) == Some(&change.user_id);
        if change.add {
            if !members.iter().any(is_it) {
                members.push(json!({ "value": change.user_id }));
            }
        } else {
            members.retain(|m| !is_it(m));
        }
    }
    map.remove("meta");
    map.insert("members".into(), Value::Array(members));
}

/// The SCIM user for an account. `externalId` is the staff id.
pub fn desired_user(person_id: &str, account: &Account) -> User {
    let mut schemas = vec![USER_SCHEMA.to_string()];
    if account.department.is_some() {
        schemas.push(ENTERPRISE_SCHEMA.to_string());
    }
    User {
        schemas,
        id: None,
        external_id: Some(person_id.to_string()),
        user_name: account.username.clone(),
        name: Some(Name {
            given_name: Some(account.given_name.clone()),
            family_name: Some(account.family_name.clone()),
        }),
        display_name: Some(account.display_name.clone()),
        emails: vec![Email {
            value: account.email.clone(),
            kind: Some("work".into()),
            primary: Some(true),
        }],
        active: Some(account.enabled),
        password: None,
        enterprise: account.department.as_ref().map(|d| Enterprise {
            department: Some(d.clone()),
        }),
        meta: None,
    }
}

/// The account a SCIM user stands for. `groups` are its managed groups;
/// `ou` and `expires` (no SCIM attribute) come from the store's record.
pub fn account_of(user: &User, groups: Vec<String>, stored: Option<&Account>) -> Account {
    let name = user.name.clone().unwrap_or_default();
    Account {
        username: user.user_name.clone(),
        given_name: name.given_name.unwrap_or_default(),
        family_name: name.family_name.unwrap_or_default(),
        display_name: user.display_name.clone().unwrap_or_default(),
        email: user.email().unwrap_or_default().to_string(),
        department: user.department().map(str::to_string),
        groups,
        ou: stored.and_then(|a| a.ou.clone()),
        expires: stored.and_then(|a| a.expires),
        enabled: user.active.unwrap_or(true),
    }
}

/// Leave out of a user what the server does not store: sent, it would
/// change nothing (or be refused), and it would never compare equal.
pub fn leave_out_unstored(user: &mut User, stored: &Stored) {
    if let Some(name) = &mut user.name {
        if !stored.stores("given_name") {
            name.given_name = None;
        }
        if !stored.stores("family_name") {
            name.family_name = None;
        }
    }
    if !stored.stores("display_name") {
        user.display_name = None;
    }
    if !stored.stores("email") {
        user.emails.clear();
    }
    if !stored.stores("enabled") {
        user.active = None;
    }
    if !stored.stores("department") {
        user.enterprise = None;
        user.schemas.retain(|s| s != ENTERPRISE_SCHEMA);
    }
}

/// PATCH operations that turn `current` into `desired`, attribute by
/// attribute; nothing for what already agrees.
pub fn diff(current: &User, desired: &User) -> Vec<PatchOperation> {
    diff_with(current, desired, &Stored::default())
}

/// [`diff`] for a server that stores only `stored`: the attributes it
/// does not store are never compared.
pub fn diff_with(current: &User, desired: &User, stored: &Stored) -> Vec<PatchOperation> {
    let keep = |field: &str| stored.stores(field);
    let mut ops = Vec::new();
    if desired.external_id.is_some() && current.external_id != desired.external_id {
        ops.push(PatchOperation::replace(
            "externalId",
            json!(desired.external_id),
        ));
    }
    if current.user_name != desired.user_name {
        ops.push(PatchOperation::replace(
            "userName",
            json!(desired.user_name),
        ));
    }
    let name = |u: &User| u.name.clone().unwrap_or_default();
    let (now, want) = (name(current), name(desired));
    if keep("given_name") && now.given_name != want.given_name {
        ops.push(PatchOperation::replace(
            "name.givenName",
            json!(want.given_name),
        ));
    }
    if keep("family_name") && now.family_name != want.family_name {
        ops.push(PatchOperation::replace(
            "name.familyName",
            json!(want.family_name),
        ));
    }
    if keep("display_name") && current.display_name != desired.display_name {
        ops.push(PatchOperation::replace(
            "displayName",
            json!(desired.display_name),
        ));
    }
    if keep("email") && current.email() != desired.email() {
        ops.push(PatchOperation::replace("emails", json!(desired.emails)));
    }
    match (current.department(), desired.department()) {
        _ if !keep("department") => {}
        (now, Some(want)) if now != Some(want) => {
            ops.push(PatchOperation::replace(DEPARTMENT_PATH, json!(want)));
        }
        (Some(_), None) => ops.push(PatchOperation::remove(DEPARTMENT_PATH.to_string())),
        _ => {}
    }
    let active = desired.active.unwrap_or(true);
    if keep("enabled") && current.active.unwrap_or(true) != active {
        ops.push(PatchOperation::replace("active", json!(active)));
    }
    ops
}

/// The resource for a PUT: the server's resource with our attributes set
/// (others, such as phone numbers set elsewhere, stay as they are).
pub fn put_body(mut resource: Value, desired: &User, password: Option<&Secret>) -> Value {
    if !resource.is_object() {
        resource = json!({});
    }
    let Value::Object(map) = &mut resource else {
        return resource;
    };
    map.remove("meta");
    let mut schemas: Vec<String> = map
        .get("schemas")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    for schema in &desired.schemas {
        if !schemas.contains(schema) {
            schemas.push(schema.clone());
        }
    }
    map.insert("schemas".into(), json!(schemas));
    map.insert("userName".into(), json!(desired.user_name));
    if let Some(ext) = &desired.external_id {
        map.insert("externalId".into(), json!(ext));
    }
    let name = map.entry("name").or_insert_with(|| json!({}));
    if let (Value::Object(name), Some(want)) = (name, &desired.name) {
        if let Some(given) = &want.given_name {
            name.insert("givenName".into(), json!(given));
        }
        if let Some(family) = &want.family_name {
            name.insert("familyName".into(), json!(family));
        }
    }
    if let Some(display) = &desired.display_name {
        map.insert("displayName".into(), json!(display));
    }
    if !desired.emails.is_empty() {
        map.insert("emails".into(), json!(desired.emails));
    }
    if let Some(active) = desired.active {
        map.insert("active".into(), json!(active));
    }
    match desired.department() {
        Some(department) => {
            let ext = map.entry(ENTERPRISE_SCHEMA).or_insert_with(|| json!({}));
            if let Value::Object(ext) = ext {
                ext.insert("department".into(), json!(department));
            }
        }
        None => {
            if let Some(Value::Object(ext)) = map.get_mut(ENTERPRISE_SCHEMA) {
                ext.remove("department");
            }
        }
    }
    if let Some(password) = password {
        map.insert("password".into(), json!(password.expose()));
    }
    resource
}
