//! The `scim` directory target: SCIM 2.0 service providers (RFC 7643/7644).
//!
//! - **Discovery.** `connect` reads `/ServiceProviderConfig` (it doubles as
//!   the health check and the token check) and adapts: PUT where PATCH is
//!   missing, `If-Match` where ETags are offered, page sizes capped by
//!   `maxResults`, Bulk within `maxOperations`/`maxPayloadSize`.
//! - **Idempotence.** `externalId` is the staff id. Before creating, a user
//!   is looked up by `externalId`; a 409 on create adopts the account that
//!   holds the userName when it is ours or nobody's. Updates PATCH only the
//!   attributes that differ from what the server holds now.
//! - **Groups.** Membership is kept on the Groups (servers need not fill a
//!   user's `groups`); missing groups are created once; adds and removes of
//!   concurrent actions are coalesced into one PATCH per group.
//! - `ou` and `expires` have no SCIM attribute: the state store keeps them.

mod adopt;
mod batch;
mod bulk;
pub mod client;
mod config;
pub mod filter;
pub mod model;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{anyhow, Result};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::{Notify, OnceCell};

use self::batch::Batcher;
use self::client::{Call, Client, ClientOptions, Reply, ScimError};
pub use self::config::ScimConfig;
use self::model::*;
use crate::error::Failure;
use crate::plan::{Account, Observed, Op, Resource};
use crate::settings::Settings;
use crate::targets::{ActionContext, TargetError};

/// What the server said it supports.
#[derive(Debug, Clone)]
pub struct Features {
    pub patch: bool,
    pub etag: bool,
    pub filter: bool,
    pub max_results: Option<usize>,
    pub bulk: Option<bulk::Limits>,
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
    /// Group id → the batcher of its member changes.
    members: Mutex<HashMap<String, Arc<Batcher<MemberChange, ()>>>>,
    members_per_patch: usize,
    /// Creations through Bulk, when configured and offered.
    creates: Option<Arc<Batcher<User, Result<String, ScimError>>>>,
    /// Actions inside `apply` now, and those of them waiting for their
    /// memberships: when all are waiting, a membership batch is complete.
    active: Arc<AtomicUsize>,
    waiting: Arc<AtomicUsize>,
    /// Told whenever those counts (or the client's pausing count) change.
    changed: Arc<Notify>,
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
        let features = Features::from_config(&spc);
        let page_size = config
            .page_size
            .max(1)
            .min(features.max_results.unwrap_or(usize::MAX));
        let client = Arc::new(client);
        let changed = client.pausing().1;
        let creates = match (&features.bulk, config.bulk) {
            (Some(limits), true) => {
                let limits = Arc::new(bulk::AdaptiveLimits::new(limits.clone()));
                let client = client.clone();
                let max = limits.max_operations();
                Some(Batcher::new(
                    max,
                    Arc::new(move |users: Vec<User>| {
                        let client = client.clone();
                        let limits = limits.clone();
                        Box::pin(async move {
                            bulk::post_users(&client, &limits, users)
                                .await
                                .into_iter()
                                .map(Ok)
                                .collect()
                        }) as futures::future::BoxFuture<'static, _>
                    }),
                ))
            }
            _ => None,
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
            members: Mutex::new(HashMap::new()),
            members_per_patch: config.members_per_patch.max(1),
            creates,
            active: Arc::new(AtomicUsize::new(0)),
            waiting: Arc::new(AtomicUsize::new(0)),
            changed,
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
    pub async fn read(&self, name: &str, observed: &mut Observed) -> Result<()> {
        let users: Vec<User> = self.list("Users", USER_ATTRIBUTES, None).await?;
        let groups: Vec<Group> = self.list("Groups", "displayName,members", None).await?;
        let mut member_of: HashMap<&str, Vec<String>> = HashMap::new();
        for group in groups
            .iter()
            .filter(|g| self.managed_groups.contains(&g.display_name))
        {
            for member in &group.members {
                member_of
                    .entry(member.value.as_str())
                    .or_default()
                    .push(group.display_name.clone());
            }
        }
        let stored = observed.accounts.remove(name).unwrap_or_default();
        let mut accounts = BTreeMap::new();
        let mut remote_ids = BTreeMap::new();
        let mut foreign = BTreeSet::new();
        let mut unmanaged = BTreeMap::new();
        for user in &users {
            let id = user.id.clone().unwrap_or_default();
            match &user.external_id {
                Some(ext) if observed.persons.contains_key(ext) && !accounts.contains_key(ext) => {
                    let mut groups = member_of.remove(id.as_str()).unwrap_or_default();
                    groups.sort();
                    groups.dedup();
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
        Ok(())
    }

    /// Carry out one account action; `Ok(Some(SCIM id))`.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let Resource::Account(account) = &ctx.action.resource else {
            return Ok(None);
        };
        let _active = Counted::new(&self.active, &self.changed);
        let desired = desired_user(ctx.person_id, account);
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
        let password = ctx.secrets.password.clone().map(Secret::new);
        if let Some(found) = self.find("externalId", ctx.person_id).await? {
            let id = self.adopt(found, &desired, password).await?;
            self.join(&id, &account.groups).await?;
            return Ok(id);
        }
        desired.password = password.clone();
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
                    _ => self.adopt(found, &desired, password).await?,
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
            Some(id) => self.get_user(id).await?,
            None => None,
        };
        let current = match current {
            Some(c) => Some(c),
            None => self
                .find("externalId", ctx.person_id)
                .await?
                .map(Current::found),
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
        let id = match &ctx.action.remote_id {
            Some(id) => Some(id.clone()),
            None => self
                .find("externalId", ctx.person_id)
                .await?
                .and_then(|u| u.id),
        };
        let Some(id) = id else {
            return Ok(None);
        };
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
        match self.get_user(&id).await? {
            Some(current) => {
                self.converge(current, &desired, None).await?;
                Ok(Some(id))
            }
            None => Ok(None),
        }
    }

    /// Take over an existing account: set what differs (and the first
    /// password of this run's bundle, so the letter is right).
    async fn adopt(
        &self,
        found: User,
        desired: &User,
        password: Option<Secret>,
    ) -> Result<String, TargetError> {
        let id = found.id.clone().unwrap_or_default();
        self.converge(Current::found(found), desired, password)
            .await?;
        Ok(id)
    }

    /// Make the server's user match `desired`: PATCH the differing
    /// attributes (or PUT the whole resource where PATCH is missing), with
    /// `If-Match` where ETags are offered. A 412 means someone changed the
    /// user meanwhile: read it again, diff again, try once more.
    async fn converge(
        &self,
        mut current: Current,
        desired: &User,
        password: Option<Secret>,
    ) -> Result<(), TargetError> {
        let id = current.id().to_string();
        for round in 0..2 {
            let mut ops = diff(&current.user, desired);
            if let Some(p) = &password {
                ops.push(PatchOperation::replace(
                    "password",
                    Value::String(p.expose().to_string()),
                ));
            }
            if ops.is_empty() {
                return Ok(());
            }
            let etag = if self.features.etag {
                current.etag.as_deref()
            } else {
                None
            };
            let call = if self.features.patch {
                Call::new(Method::PATCH, &["Users", &id])
                    .json(&PatchRequest::new(&ops))
                    .if_match(etag)
            } else {
                let resource = match current.resource.take() {
                    Some(r) => r,
                    None => match self.get_user(&id).await? {
                        Some(fresh) => {
                            current = fresh;
                            current.resource.take().unwrap_or(Value::Null)
                        }
                        None => return Err(TargetError::permanent(format!("user {id} is gone"))),
                    },
                };
                let etag = if self.features.etag {
                    current.etag.as_deref()
                } else {
                    None
                };
                Call::new(Method::PUT, &["Users", &id])
                    .json(&put_body(resource, desired, password.as_ref()))
                    .if_match(etag)
            };
            match self.client.send::<Value>(&call).await {
                Ok(_) => return Ok(()),
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
            let users: Vec<User> = self.list("Users", USER_ATTRIBUTES, None).await?;
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
        if let Some(creates) = &self.creates {
            return creates.submit(user).await.unwrap_or_else(|err| {
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

    /// Every resource of a type, page by page (`startIndex`/`count`).
    async fn list<T: DeserializeOwned>(
        &self,
        resource: &str,
        attributes: &str,
        filter: Option<&str>,
    ) -> Result<Vec<T>, ScimError> {
        let mut all = Vec::new();
        let mut start = 1usize;
        loop {
            let mut call = Call::get(&[resource])
                .query("startIndex", start.to_string())
                .query("count", self.page_size.to_string())
                .query("attributes", attributes);
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
            if let Some(id) = self.find_group(name).await? {
                return Ok(id);
            }
            let group = Group {
                schemas: vec![GROUP_SCHEMA.to_string()],
                display_name: name.to_string(),
                ..Group::default()
            };
            let created = self
                .client
                .send::<Group>(&Call::new(Method::POST, &["Groups"]).json(&group))
                .await;
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
            self.list("Groups", "displayName", None).await?
        };
        Ok(groups
            .into_iter()
            .find(|g| g.display_name == name)
            .and_then(|g| g.id))
    }

    fn member_batcher(&self, group_id: &str) -> Arc<Batcher<MemberChange, ()>> {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members
            .entry(group_id.to_string())
            .or_insert_with(|| {
                let client = self.client.clone();
                let group_id = group_id.to_string();
                let patch = self.features.patch;
                let etag = self.features.etag;
                let (active, waiting) = (self.active.clone(), self.waiting.clone());
                let (pausing, changed) = self.client.pausing();
                Batcher::with_ready(
                    self.members_per_patch,
                    Arc::new(move |changes: Vec<MemberChange>| {
                        let client = client.clone();
                        let group_id = group_id.clone();
                        Box::pin(async move {
                            change_members(&client, &group_id, patch, etag, changes).await
                        }) as futures::future::BoxFuture<'static, _>
                    }),
                    // Complete when every action in flight waits for its
                    // memberships or pauses before a retry.
                    Arc::new(move || {
                        waiting.load(Ordering::SeqCst) + pausing.load(Ordering::SeqCst)
                            >= active.load(Ordering::SeqCst)
                    }),
                    changed,
                )
            })
            .clone()
    }

    async fn change_membership(
        &self,
        user_id: &str,
        groups: impl Iterator<Item = &String>,
        add: bool,
    ) -> Result<(), TargetError> {
        let changes = groups.map(|name| async move {
            let group_id = self.group_id(name).await?;
            self.member_batcher(&group_id)
                .submit(MemberChange {
                    user_id: user_id.to_string(),
                    add,
                })
                .await
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
    /// what the Groups say now.
    async fn sync_groups(&self, user_id: &str, desired: &[String]) -> Result<(), TargetError> {
        let member_filter = filter::eq("members.value", user_id);
        let current: Vec<Group> = self
            .list("Groups", "displayName", Some(&member_filter))
            .await?;
        let current: BTreeSet<&String> = current
            .iter()
            .map(|g| &g.display_name)
            .filter(|n| self.managed_groups.contains(*n))
            .collect();
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

/// One request for a batch of membership changes of one group. Without
/// PATCH: read the group, change its members, PUT it (with `If-Match`,
/// again on 412). A refused batch is retried member by member, so one bad
/// member fails only its own person.
async fn change_members(
    client: &Client,
    group_id: &str,
    patch: bool,
    etag: bool,
    changes: Vec<MemberChange>,
) -> Vec<Result<(), TargetError>> {
    let result = if patch {
        patch_members(client, group_id, &changes).await
    } else {
        put_members(client, group_id, etag, &changes).await
    };
    match result {
        Ok(()) => changes.iter().map(|_| Ok(())).collect(),
        Err(err) if !err.is_transient() && changes.len() > 1 => {
            let mut results = Vec::with_capacity(changes.len());
            for change in &changes {
                let one = std::slice::from_ref(change);
                let r = if patch {
                    patch_members(client, group_id, one).await
                } else {
                    put_members(client, group_id, etag, one).await
                };
                results.push(r.map_err(TargetError::from));
            }
            results
        }
        Err(err) => {
            let err = TargetError::from(err);
            changes.iter().map(|_| Err(err.clone())).collect()
        }
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

/// PATCH operations that turn `current` into `desired`, attribute by
/// attribute; nothing for what already agrees.
pub fn diff(current: &User, desired: &User) -> Vec<PatchOperation> {
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
    if now.given_name != want.given_name {
        ops.push(PatchOperation::replace(
            "name.givenName",
            json!(want.given_name),
        ));
    }
    if now.family_name != want.family_name {
        ops.push(PatchOperation::replace(
            "name.familyName",
            json!(want.family_name),
        ));
    }
    if current.display_name != desired.display_name {
        ops.push(PatchOperation::replace(
            "displayName",
            json!(desired.display_name),
        ));
    }
    if current.email() != desired.email() {
        ops.push(PatchOperation::replace("emails", json!(desired.emails)));
    }
    match (current.department(), desired.department()) {
        (now, Some(want)) if now != Some(want) => {
            ops.push(PatchOperation::replace(DEPARTMENT_PATH, json!(want)));
        }
        (Some(_), None) => ops.push(PatchOperation::remove(DEPARTMENT_PATH.to_string())),
        _ => {}
    }
    let active = desired.active.unwrap_or(true);
    if current.active.unwrap_or(true) != active {
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
    map.insert("emails".into(), json!(desired.emails));
    map.insert("active".into(), json!(desired.active.unwrap_or(true)));
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
