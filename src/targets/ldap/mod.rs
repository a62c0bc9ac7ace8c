//! The `ldap` directory target: accounts in OpenLDAP, Active Directory or
//! 389 Directory Server.
//!
//! - `connect`: check the configuration (exit 2 on mistakes), open a pool of
//!   bound connections over LDAPS or StartTLS (verified), check the base DN.
//! - `read`: paged searches below the base: accounts matched to persons on
//!   our books by staff id (`employeeNumber` / `employeeID`), their groups,
//!   and every other username, which new usernames avoid.
//! - `apply`: create (entry, first password, groups), update only what the
//!   plan says changed, disable (or delete, if the profile says so) on
//!   withdrawal. Group membership is idempotent (Permissive Modify; "already
//!   a member" is success). Missing `ou=` containers and groups are created
//!   on first use. Busy/unavailable servers, timeouts and lost connections
//!   are transient (the executor retries); anything else fails the person's
//!   action with the server's diagnostic message.
//!
//! Flavour details are in `openldap.rs`, `ad.rs` and `ds389.rs`.

mod ad;
mod adopt;
mod classify;
pub mod config;
mod ds389;
mod entry;
pub mod escape;
mod openldap;
mod pool;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use anyhow::{anyhow, Result};
use chrono::NaiveDate;
use ldap3::{LdapError, Mod, SearchEntry};

pub use config::{Flavour, LdapConfig, PosixConfig};

use self::classify::{classify, code_of, rc};
use self::config::{Resolved, TlsMode};
use self::escape::{container_below, dn_value, filter_value, join_dn, normalize_dn, same_dn};
use self::pool::{Conn, Pool};
use crate::config::Area;
use crate::error::Failure;
use crate::plan::{Account, Observed, Op, Resource};
use crate::settings::Settings;
use crate::targets::busy::{Busy, BusyCount};
use crate::targets::common::batch::{Batches, Linger};
use crate::targets::{ActionContext, TargetError};

/// An account entry as read from the directory, flavour-neutral.
pub(crate) struct Found {
    pub dn: String,
    pub username: Option<String>,
    pub staff_id: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    pub email: String,
    pub department: Option<String>,
    pub expires: Option<NaiveDate>,
    pub enabled: bool,
    /// Group DNs from `memberOf` (Active Directory).
    pub member_of: Vec<String>,
    /// `userPrincipalName` (Active Directory), for `adopt`'s matching.
    pub upn: Option<String>,
}

/// What a new entry is made from.
pub(crate) struct NewAccount<'a> {
    pub account: &'a Account,
    pub staff_id: &'a str,
    pub password: Option<&'a str>,
    pub must_change: bool,
    pub posix: Option<(u32, &'a PosixConfig)>,
    pub upn_suffix: &'a str,
}

pub struct LdapTarget {
    name: String,
    cfg: Resolved,
    pool: Pool,
    /// Containers and groups known to exist (normalised DNs).
    known: std::sync::Mutex<HashSet<String>>,
    /// The groups were read (`read`): a group not known does not exist.
    groups_read: std::sync::atomic::AtomicBool,
    /// One at a time makes missing containers (the rest wait and see them).
    making_containers: tokio::sync::Mutex<()>,
    /// The actions at work (see `Target::hold`): batches wait for them.
    busy: BusyCount,
    /// Group members waiting to be written, per group.
    batches: Batches<String, ()>,
    uids: tokio::sync::Mutex<Option<UidAllocator>>,
}

impl LdapTarget {
    /// The actions at work, which the group batches wait for.
    pub fn busy_count(&self) -> &BusyCount {
        &self.busy
    }

    /// The gate of this target's operations in flight.
    pub fn limiter(&self) -> std::sync::Arc<crate::adaptive::Limiter> {
        self.pool.limiter().clone()
    }

    /// Check the configuration, connect, bind, and check the base DN.
    pub async fn connect(name: &str, config: &LdapConfig, settings: &Settings) -> Result<Self> {
        let cfg = config
            .resolve(
                name,
                |p| settings.path(p),
                &settings.config.organisation.domain,
                |var| std::env::var(var).ok(),
            )
            .map_err(Failure::usage)?;
        check_profiles(name, &cfg, settings)?;
        let tls_config = match cfg.tls {
            TlsMode::Plain => None,
            TlsMode::StartTls | TlsMode::Ldaps => Some(
                crate::targets::common::tls::client_config(cfg.ca_file.as_deref())
                    .map(std::sync::Arc::new)
                    .map_err(|e| Failure::usage(format!("target \"{name}\": {e}")))?,
            ),
        };
        if cfg.tls == TlsMode::Plain && !is_loopback(&cfg.url) {
            settings.output.warn(format!(
                "target \"{name}\": {} is unencrypted: the bind password and first passwords cross the network in clear text; use ldaps:// or `starttls: true`",
                cfg.url
            ));
        }
        let limiter = crate::adaptive::Limiter::new(
            config.limits.ceiling(settings.jobs),
            config.limits.adaptive(),
        );
        let trace = crate::targets::common::Trace::new(name, &settings.output);
        let pool = Pool::open(&cfg, tls_config, limiter, trace)
            .await
            .map_err(|e| connect_error(name, &cfg, e))?;
        let busy = BusyCount::default();
        let target = LdapTarget {
            name: name.to_string(),
            cfg,
            pool,
            known: std::sync::Mutex::new(HashSet::new()),
            groups_read: std::sync::atomic::AtomicBool::new(false),
            making_containers: tokio::sync::Mutex::new(()),
            batches: Batches::new(usize::MAX, Linger::UntilQuiet(busy.clone())),
            busy,
            uids: tokio::sync::Mutex::new(None),
        };
        let mut conn = target.pool.get().await?;
        match conn.lookup(&target.cfg.base_dn, &["objectClass"]).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Failure::usage_with_hint(
                    format!(
                        "target \"{name}\": base_dn \"{}\" does not exist on {}",
                        target.cfg.base_dn, target.cfg.url
                    ),
                    "create it, or point base_dn at the directory's suffix",
                )
                .into())
            }
            Err(e) => {
                return Err(anyhow!(
                    "target \"{name}\": cannot read base_dn \"{}\": {}",
                    target.cfg.base_dn,
                    classify("base_dn", e)
                ))
            }
        }
        // Another flavour's writes on 389-ds fail (pwdAccountLockedTime) or
        // are dropped without a word (pwdReset): say so before any.
        if target.cfg.flavour != Flavour::Ds389 {
            let vendor = match conn.lookup("", &["vendorName"]).await {
                Ok(Some(root)) => entry::first(&root, "vendorName").map(str::to_string),
                _ => None,
            };
            if let Some(vendor) = vendor.filter(|v| v.starts_with("389")) {
                return Err(Failure::usage_with_hint(
                    format!(
                        "target \"{name}\": {} is a 389 Directory Server (vendorName \"{vendor}\"), not {}: it would not disable accounts or keep must-change",
                        target.cfg.url,
                        target.cfg.flavour.name()
                    ),
                    "set `flavour: 389ds` (docs/389ds.md)",
                )
                .into());
            }
        }
        drop(conn);
        Ok(target)
    }

    /// Persons' accounts, their DNs, and the usernames of everybody else.
    pub async fn read(&self, settings: &Settings, observed: &mut Observed) -> Result<()> {
        let ad = self.cfg.flavour == Flavour::ActiveDirectory;
        let mut conn = self.pool.get().await?;
        let found = self.search_users(&mut conn).await?;
        for f in &found {
            self.remember(escape::split_first(&f.dn).1);
        }
        let stored = observed.accounts.remove(&self.name).unwrap_or_default();
        let managed = managed_groups(settings, &stored);
        let groups_base = self.groups_container();
        let mut memberships: HashMap<String, Vec<String>> = HashMap::new();
        if ad {
            for f in &found {
                let names = f
                    .member_of
                    .iter()
                    .filter_map(|g| group_name(g, &groups_base, &managed))
                    .collect();
                memberships.insert(normalize_dn(&f.dn), names);
            }
        } else {
            let groups = conn
                .search_all(&groups_base, openldap::GROUP_FILTER, &["member"])
                .await
                .map_err(|e| anyhow!("{}", classify(&groups_base, e)))?;
            for group in &groups {
                self.remember(&group.dn);
            }
            self.groups_read
                .store(true, std::sync::atomic::Ordering::Relaxed);
            for group in &groups {
                let Some(name) = group_name(&group.dn, &groups_base, &managed) else {
                    continue;
                };
                for member in entry::all(group, "member") {
                    memberships
                        .entry(normalize_dn(member))
                        .or_default()
                        .push(name.clone());
                }
            }
        }

        // Each person on our books gets the entry carrying their staff id;
        // with several, the one with their pinned username.
        let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, f) in found.iter().enumerate() {
            let Some(id) = f.staff_id.as_deref() else {
                continue;
            };
            let Some(known) = observed.persons.get(id) else {
                continue;
            };
            let pinned = |j: usize| {
                found[j]
                    .username
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(&known.username))
            };
            match chosen.get(id) {
                Some(&j) if pinned(j) || !pinned(i) => {}
                _ => {
                    chosen.insert(id, i);
                }
            }
        }
        // A person adopted by mail or uid has an entry without a staff id:
        // the one with the username on our books.
        for (id, account) in &stored {
            if chosen.contains_key(id.as_str()) || !observed.persons.contains_key(id) {
                continue;
            }
            let own = found.iter().position(|f| {
                f.staff_id.is_none()
                    && f.username
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(&account.username))
            });
            if let Some(i) = own {
                chosen.insert(id.as_str(), i);
            }
        }
        let ours: HashSet<usize> = chosen.values().copied().collect();
        // Further entries with the staff id of one of ours: second accounts.
        let mut duplicates: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, f) in found.iter().enumerate() {
            let Some(id) = f.staff_id.as_deref() else {
                continue;
            };
            if chosen.contains_key(id) && !ours.contains(&i) {
                duplicates
                    .entry(id.to_string())
                    .or_default()
                    .push(f.username.clone().unwrap_or_else(|| f.dn.clone()));
            }
        }
        if !duplicates.is_empty() {
            observed
                .duplicate_accounts
                .insert(self.name.clone(), duplicates);
        }
        // Entries with a staff id nobody on our books has.
        let unmanaged: BTreeMap<String, String> = found
            .iter()
            .filter_map(|f| {
                let id = f.staff_id.clone()?;
                (!chosen.contains_key(id.as_str()))
                    .then(|| (id, f.username.clone().unwrap_or_else(|| f.dn.clone())))
            })
            .collect();
        let holders: BTreeMap<String, String> = found
            .iter()
            .enumerate()
            .filter(|(i, _)| !ours.contains(i))
            .filter_map(|(_, f)| Some((f.username.as_deref()?.to_lowercase(), f.dn.clone())))
            .collect();
        let foreign: BTreeSet<String> = holders.keys().cloned().collect();
        let mut accounts = BTreeMap::new();
        let mut remote_ids = BTreeMap::new();
        for (id, i) in chosen {
            let f = &found[i];
            let container = container_below(&f.dn, &self.cfg.base_dn).unwrap_or_default();
            let ou = match stored.get(id) {
                Some(a) if same_dn(a.ou.as_deref().unwrap_or(&self.cfg.users_ou), &container) => {
                    a.ou.clone()
                }
                _ if same_dn(&container, &self.cfg.users_ou) => None,
                _ => Some(container),
            };
            let mut groups = memberships.remove(&normalize_dn(&f.dn)).unwrap_or_default();
            groups.sort();
            groups.dedup();
            let username = f
                .username
                .clone()
                .or_else(|| observed.persons.get(id).map(|k| k.username.clone()))
                .unwrap_or_default();
            accounts.insert(
                id.to_string(),
                Account {
                    username,
                    given_name: f.given_name.clone(),
                    family_name: f.family_name.clone(),
                    display_name: f.display_name.clone(),
                    email: f.email.clone(),
                    department: f.department.clone(),
                    groups,
                    ou,
                    expires: f.expires,
                    enabled: f.enabled,
                },
            );
            remote_ids.insert(id.to_string(), f.dn.clone());
        }
        observed.accounts.insert(self.name.clone(), accounts);
        observed
            .remote_ids
            .entry(self.name.clone())
            .or_default()
            .extend(remote_ids);
        observed
            .foreign_usernames
            .entry(self.name.clone())
            .or_default()
            .extend(foreign);
        observed
            .username_holders
            .entry(self.name.clone())
            .or_default()
            .extend(holders);
        if !unmanaged.is_empty() {
            observed
                .unmanaged_accounts
                .insert(self.name.clone(), unmanaged);
        }
        Ok(())
    }

    /// Carry out one account action; `Ok(DN)` of the entry afterwards.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let Resource::Account(account) = &ctx.action.resource else {
            return Ok(None);
        };
        // At work for the length of this call (not while the executor waits
        // to retry it): the executor's promise is kept.
        let busy = self.busy.busy();
        if let Some(promise) = ctx.promise {
            promise.keep();
        }
        match ctx.action.op {
            Op::Create => self.create(ctx, account, &busy).await.map(Some),
            Op::Update => self.update(ctx, account, &busy).await.map(Some),
            Op::Unchanged if ctx.new_secrets => self.reset_password(ctx).await.map(Some),
            Op::Unchanged => Ok(ctx.action.remote_id.clone()),
            Op::Remove => self.remove(ctx, account).await,
        }
    }

    async fn create(
        &self,
        ctx: &ActionContext<'_>,
        account: &Account,
        busy: &Busy,
    ) -> Result<String, TargetError> {
        let dn = self.user_dn(&account.username, account.ou.as_deref());
        let posix = match &self.cfg.posix {
            Some(p) => Some((self.allocate_uid(ctx.person_id).await?, p)),
            None => None,
        };
        let new = NewAccount {
            account,
            staff_id: ctx.person_id,
            password: ctx.secrets.password.as_deref(),
            must_change: must_change(ctx),
            posix,
            upn_suffix: &self.cfg.upn_suffix,
        };
        let attrs = match self.cfg.flavour {
            Flavour::Openldap => openldap::new_entry(&new),
            Flavour::ActiveDirectory => ad::new_entry(&new),
            Flavour::Ds389 => ds389::new_entry(&new),
        };
        // A container not seen yet is made first, once, rather than found
        // missing by every add that goes into it.
        let parent = escape::split_first(&dn).1;
        let mut parent_made = false;
        if !self.is_known(parent) {
            self.ensure_container(parent).await?;
            parent_made = true;
        }
        loop {
            let mut conn = self.conn(&dn).await?;
            match conn.add(&dn, attrs.clone()).await {
                Ok(()) => break,
                Err(e) if code_of(&e) == Some(rc::NO_SUCH_OBJECT) && !parent_made => {
                    self.ensure_container(escape::split_first(&dn).1).await?;
                    parent_made = true;
                }
                Err(e) if code_of(&e) == Some(rc::ENTRY_ALREADY_EXISTS) => {
                    // An earlier attempt may have created it and lost the answer.
                    self.take_over(ctx, account, &dn).await?;
                    break;
                }
                Err(e) => return Err(classify(&dn, e)),
            }
        }
        self.check_must_change(ctx, &dn).await?;
        self.join_groups(&account.groups, &dn, busy).await?;
        Ok(dn)
    }

    /// Join every group at once: the person waits for the slowest batch,
    /// not for the sum of them. Adds to one group from concurrent actions
    /// are written together once no action of the target is at work (each
    /// modify of a group is a write transaction and a disk sync on the
    /// server; see `common/batch.rs`); "already a member" is success.
    async fn join_groups(
        &self,
        groups: &[String],
        dn: &str,
        busy: &Busy,
    ) -> Result<(), TargetError> {
        let names: HashMap<String, &str> = groups
            .iter()
            .map(|g| (self.group_dn(g), g.as_str()))
            .collect();
        let tickets = self.batches.enqueue(
            names
                .keys()
                .map(|group_dn| (group_dn.clone(), dn.to_string())),
        );
        // Queued before this action stops counting as at work: a batch
        // written the moment it does holds them.
        let _parked = busy.park();
        let write = |group_dn: String, members: Vec<String>| {
            let group = names.get(&group_dn).copied().unwrap_or_default();
            let n = members.len();
            async move { vec![self.add_members(group, &group_dn, members).await; n] }
        };
        self.batches
            .wait(tickets, write)
            .await
            .into_iter()
            .collect()
    }

    /// An entry at our DN exists: ours (same staff id) from an interrupted
    /// attempt — bring it to the desired state — or somebody else's.
    async fn take_over(
        &self,
        ctx: &ActionContext<'_>,
        account: &Account,
        dn: &str,
    ) -> Result<(), TargetError> {
        let id_attr = self.id_attr();
        let mut conn = self.conn(dn).await?;
        let existing = conn
            .lookup(dn, &[id_attr, ad::UAC_ATTR])
            .await
            .map_err(|e| classify(dn, e))?
            .ok_or_else(|| TargetError::transient(format!("{dn}: exists, then vanished")))?;
        let owner = entry::first(&existing, id_attr);
        if owner != Some(ctx.person_id) {
            return Err(TargetError::permanent(format!(
                "{dn} already exists and is not this person's account ({id_attr}: {})",
                owner.unwrap_or("none")
            )));
        }
        let mut mods = match self.cfg.flavour {
            Flavour::ActiveDirectory => {
                let mut mods = ad::all_mods(account, ctx.person_id);
                mods.extend(ad::uac_mods(uac_of(&existing), account.enabled));
                mods
            }
            Flavour::Openldap => openldap::all_mods(account, ctx.person_id),
            Flavour::Ds389 => ds389::all_mods(account, ctx.person_id),
        };
        mods.extend(self.password_mods(ctx));
        conn.modify(dn, mods, false)
            .await
            .map_err(|e| classify(dn, e))
    }

    async fn update(
        &self,
        ctx: &ActionContext<'_>,
        account: &Account,
        busy: &Busy,
    ) -> Result<String, TargetError> {
        let ad = self.cfg.flavour == Flavour::ActiveDirectory;
        let mut dn = self.locate(ctx).await?.ok_or_else(|| {
            TargetError::permanent(format!(
                "no entry with {}={} below {}",
                self.id_attr(),
                ctx.person_id,
                self.cfg.base_dn
            ))
        })?;
        let mut mods: Vec<Mod<Vec<u8>>> = Vec::new();
        let mut old_groups: Option<Vec<String>> = None;
        let mut moves = false;
        let mut toggles = false;
        for change in &ctx.action.changes {
            match change.field.as_str() {
                "groups" => old_groups = Some(split_groups(change.from.as_deref())),
                "ou" => moves = true,
                "enabled" => toggles = true,
                field if ad => mods.extend(ad::field_mods(field, account)),
                field => mods.extend(openldap::field_mods(field, account)),
            }
        }
        if toggles {
            match self.cfg.flavour {
                Flavour::ActiveDirectory => {
                    let uac = self.read_uac(&dn).await?;
                    mods.extend(ad::uac_mods(uac, account.enabled));
                }
                Flavour::Openldap => mods.extend(openldap::enabled_mods(account.enabled)),
                Flavour::Ds389 => mods.extend(ds389::enabled_mods(account.enabled)),
            }
        }
        if ctx.new_secrets {
            mods.extend(self.password_mods(ctx));
        }
        if !mods.is_empty() {
            let mut conn = self.conn(&dn).await?;
            conn.modify(&dn, mods, false)
                .await
                .map_err(|e| classify(&dn, e))?;
        }
        if ctx.new_secrets {
            self.check_must_change(ctx, &dn).await?;
        }
        if moves {
            dn = self
                .move_account(&dn, account, old_groups.as_deref(), busy)
                .await?;
        }
        if let Some(old) = old_groups {
            self.join_groups(&account.groups, &dn, busy).await?;
            for group in old.iter().filter(|g| !account.groups.contains(g)) {
                self.remove_member(group, &dn).await?;
            }
        }
        Ok(dn)
    }

    /// Move the entry to the account's container. OpenLDAP keeps the old DN
    /// in groups (no referential integrity by default): swap it there.
    async fn move_account(
        &self,
        dn: &str,
        account: &Account,
        old_groups: Option<&[String]>,
        busy: &Busy,
    ) -> Result<String, TargetError> {
        let parent = self.container_dn(account.ou.as_deref());
        let (rdn, current_parent) = escape::split_first(dn);
        if same_dn(current_parent, &parent) {
            return Ok(dn.to_string());
        }
        self.ensure_container(&parent).await?;
        let mut conn = self.conn(dn).await?;
        conn.move_entry(dn, rdn, &parent)
            .await
            .map_err(|e| classify(dn, e))?;
        let new_dn = join_dn(&[rdn, &parent]);
        if self.cfg.flavour != Flavour::ActiveDirectory {
            let mut groups: BTreeSet<&String> = account.groups.iter().collect();
            groups.extend(old_groups.unwrap_or_default());
            for group in groups {
                self.remove_member(group, dn).await?;
                if account.groups.contains(group) {
                    self.join_groups(std::slice::from_ref(group), &new_dn, busy)
                        .await?;
                }
            }
        }
        Ok(new_dn)
    }

    /// Secrets were issued anew (a lost bundle, `--rotate`): the directory
    /// gets the bundle's password.
    async fn reset_password(&self, ctx: &ActionContext<'_>) -> Result<String, TargetError> {
        let dn = self.locate(ctx).await?.ok_or_else(|| {
            TargetError::permanent(format!(
                "no entry with {}={} below {}",
                self.id_attr(),
                ctx.person_id,
                self.cfg.base_dn
            ))
        })?;
        let mods = self.password_mods(ctx);
        if !mods.is_empty() {
            let mut conn = self.conn(&dn).await?;
            conn.modify(&dn, mods, false)
                .await
                .map_err(|e| classify(&dn, e))?;
            drop(conn);
            self.check_must_change(ctx, &dn).await?;
        }
        Ok(dn)
    }

    /// Withdraw: disable, or delete when the profile says so. `Ok(None)` when
    /// the entry is gone.
    async fn remove(
        &self,
        ctx: &ActionContext<'_>,
        account: &Account,
    ) -> Result<Option<String>, TargetError> {
        let Some(dn) = self.locate(ctx).await? else {
            return Ok(None);
        };
        let delete = ctx.profile.is_some_and(|p| p.account.delete_on_offboard);
        if delete {
            if self.cfg.flavour != Flavour::ActiveDirectory {
                for group in &account.groups {
                    self.remove_member(group, &dn).await?;
                }
            }
            let mut conn = self.conn(&dn).await?;
            return match conn.delete(&dn).await {
                Ok(()) => Ok(None),
                Err(e) if code_of(&e) == Some(rc::NO_SUCH_OBJECT) => Ok(None),
                Err(e) => Err(classify(&dn, e)),
            };
        }
        let mods = self.disable_mods(&dn).await?;
        let mut conn = self.conn(&dn).await?;
        conn.modify(&dn, mods, false)
            .await
            .map_err(|e| classify(&dn, e))?;
        drop(conn);
        self.disable_duplicates(ctx, &dn).await?;
        Ok(Some(dn))
    }

    /// Withdrawing a person disables every entry carrying their staff id,
    /// not only the one homebase manages (a second account made by hand or
    /// before the state store was lost).
    async fn disable_duplicates(
        &self,
        ctx: &ActionContext<'_>,
        managed: &str,
    ) -> Result<(), TargetError> {
        let filter = format!("({}={})", self.id_attr(), filter_value(ctx.person_id));
        let mut conn = self.conn(&self.cfg.base_dn).await?;
        let found = conn
            .search_all(&self.cfg.base_dn, &filter, &["1.1"])
            .await
            .map_err(|e| classify(&self.cfg.base_dn, e))?;
        drop(conn);
        for entry in found.into_iter().filter(|e| !same_dn(&e.dn, managed)) {
            let mods = self.disable_mods(&entry.dn).await?;
            let mut conn = self.conn(&entry.dn).await?;
            conn.modify(&entry.dn, mods, false)
                .await
                .map_err(|e| classify(&entry.dn, e))?;
        }
        Ok(())
    }

    /// Add members in one modify. A missing group is created with them. A
    /// batch the server refuses is tried member by member, so one person's
    /// problem stays theirs.
    async fn add_members(
        &self,
        group: &str,
        group_dn: &str,
        members: Vec<String>,
    ) -> Result<(), TargetError> {
        match self.add_members_once(group, group_dn, &members).await {
            Err(TargetError::Permanent { .. }) if members.len() > 1 => {
                for member in members {
                    self.add_members_once(group, group_dn, &[member]).await?;
                }
                Ok(())
            }
            result => result,
        }
    }

    async fn add_members_once(
        &self,
        group: &str,
        group_dn: &str,
        members: &[String],
    ) -> Result<(), TargetError> {
        let values: HashSet<Vec<u8>> = members.iter().map(|m| m.as_bytes().to_vec()).collect();
        let mut created = false;
        // A group the read did not find is new: add it with its members.
        let absent =
            self.groups_read.load(std::sync::atomic::Ordering::Relaxed) && !self.is_known(group_dn);
        if absent && self.cfg.create_missing {
            if self.create_group(group, group_dn, members).await? {
                return Ok(());
            }
            created = true;
        }
        loop {
            let mods = vec![Mod::Add(b"member".to_vec(), values.clone())];
            let mut conn = self.conn(group_dn).await?;
            match conn.modify(group_dn, mods, true).await {
                Ok(()) => return Ok(()),
                // Servers without Permissive Modify: OpenLDAP says 20, AD 68.
                Err(e)
                    if matches!(
                        code_of(&e),
                        Some(rc::ATTRIBUTE_OR_VALUE_EXISTS | rc::ENTRY_ALREADY_EXISTS)
                    ) =>
                {
                    if members.len() == 1 {
                        return Ok(());
                    }
                    return Err(classify(group_dn, e));
                }
                Err(e) if code_of(&e) == Some(rc::NO_SUCH_OBJECT) && !created => {
                    if !self.cfg.create_missing {
                        return Err(TargetError::permanent(format!(
                            "group {group_dn} does not exist; create it, or set `create_missing: true` on target \"{}\"",
                            self.name
                        )));
                    }
                    if self.create_group(group, group_dn, members).await? {
                        return Ok(());
                    }
                    created = true;
                }
                Err(e) => return Err(classify(group_dn, e)),
            }
        }
    }

    /// Create a group with its first members. `Ok(false)` when somebody else
    /// created it meanwhile (then the members are still to be added).
    async fn create_group(
        &self,
        group: &str,
        group_dn: &str,
        members: &[String],
    ) -> Result<bool, TargetError> {
        let mut e = entry::NewEntry::default();
        match self.cfg.flavour {
            Flavour::Openldap | Flavour::Ds389 => {
                e.set_all("objectClass", &["top", "groupOfNames"])
                    .set("cn", group);
            }
            Flavour::ActiveDirectory => {
                e.set_all("objectClass", &["top", "group"])
                    .set("cn", group)
                    .set("sAMAccountName", group);
            }
        }
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        e.set_all("member", &members);
        let attrs = e.into_attrs();
        let mut parent_made = false;
        loop {
            let mut conn = self.conn(group_dn).await?;
            match conn.add(group_dn, attrs.clone()).await {
                Ok(()) => {
                    self.remember(group_dn);
                    return Ok(true);
                }
                Err(e) if code_of(&e) == Some(rc::ENTRY_ALREADY_EXISTS) => return Ok(false),
                Err(e) if code_of(&e) == Some(rc::NO_SUCH_OBJECT) && !parent_made => {
                    self.ensure_container(escape::split_first(group_dn).1)
                        .await?;
                    parent_made = true;
                }
                Err(e) => return Err(classify(group_dn, e)),
            }
        }
    }

    /// Remove a member; not being one (or the group being gone) is success.
    async fn remove_member(&self, group: &str, user_dn: &str) -> Result<(), TargetError> {
        let group_dn = self.group_dn(group);
        let delete = || {
            Mod::Delete(
                b"member".to_vec(),
                HashSet::from([user_dn.as_bytes().to_vec()]),
            )
        };
        let mut conn = self.conn(&group_dn).await?;
        let result = match conn.modify(&group_dn, vec![delete()], true).await {
            // A groupOfNames cannot lose its last member: the empty DN stands
            // in (added and the member deleted in one modify; reads skip it).
            Err(e)
                if code_of(&e) == Some(rc::OBJECT_CLASS_VIOLATION)
                    && self.cfg.flavour == Flavour::Openldap =>
            {
                let placeholder = Mod::Add(b"member".to_vec(), HashSet::from([Vec::new()]));
                conn.modify(&group_dn, vec![placeholder, delete()], true)
                    .await
            }
            other => other,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    code_of(&e),
                    Some(rc::NO_SUCH_ATTRIBUTE | rc::NO_SUCH_OBJECT)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(classify(&group_dn, e)),
        }
    }

    /// Make sure `dn` and the `ou=` containers above it (below the base)
    /// exist, creating the missing ones if allowed.
    async fn ensure_container(&self, dn: &str) -> Result<(), TargetError> {
        let _one_at_a_time = self.making_containers.lock().await;
        let mut chain = Vec::new();
        let mut current = dn.to_string();
        while !current.is_empty() && !same_dn(&current, &self.cfg.base_dn) {
            if self.is_known(&current) {
                break;
            }
            let parent = escape::split_first(&current).1.to_string();
            chain.push(current);
            current = parent;
        }
        for container in chain.into_iter().rev() {
            let rdn = escape::parse_dn(escape::split_first(&container).0)
                .and_then(|r| r.into_iter().next())
                .ok_or_else(|| TargetError::permanent(format!("\"{container}\" is not a DN")))?;
            let mut conn = self.conn(&container).await?;
            if !self.cfg.create_missing || !rdn.attr.eq_ignore_ascii_case("ou") {
                match conn.lookup(&container, &["objectClass"]).await {
                    Ok(Some(_)) => {
                        self.remember(&container);
                        continue;
                    }
                    Ok(None) => {
                        return Err(TargetError::permanent(format!(
                            "container {container} does not exist; create it{}",
                            if self.cfg.create_missing {
                                ""
                            } else {
                                ", or set `create_missing: true`"
                            }
                        )))
                    }
                    Err(e) => return Err(classify(&container, e)),
                }
            }
            let mut e = entry::NewEntry::default();
            e.set_all("objectClass", &["top", "organizationalUnit"])
                .set("ou", rdn.value.as_str());
            match conn.add(&container, e.into_attrs()).await {
                Ok(()) => {}
                Err(e) if code_of(&e) == Some(rc::ENTRY_ALREADY_EXISTS) => {}
                Err(e) => return Err(classify(&container, e)),
            }
            self.remember(&container);
        }
        Ok(())
    }

    /// The person's entry: the DN the plan carries, else a search by staff id.
    async fn locate(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        if let Some(dn) = &ctx.action.remote_id {
            return Ok(Some(dn.clone()));
        }
        let filter = format!("({}={})", self.id_attr(), filter_value(ctx.person_id));
        let mut conn = self.conn(&self.cfg.base_dn).await?;
        let found = conn
            .search_all(&self.cfg.base_dn, &filter, &["1.1"])
            .await
            .map_err(|e| classify(&self.cfg.base_dn, e))?;
        Ok(found.into_iter().next().map(|e| e.dn))
    }

    async fn read_uac(&self, dn: &str) -> Result<u32, TargetError> {
        let mut conn = self.conn(dn).await?;
        let entry = conn
            .lookup(dn, &[ad::UAC_ATTR])
            .await
            .map_err(|e| classify(dn, e))?
            .ok_or_else(|| TargetError::permanent(format!("{dn}: no such entry")))?;
        Ok(uac_of(&entry))
    }

    fn password_mods(&self, ctx: &ActionContext<'_>) -> Vec<Mod<Vec<u8>>> {
        let Some(password) = ctx.secrets.password.as_deref() else {
            return Vec::new();
        };
        match self.cfg.flavour {
            Flavour::Openldap => openldap::password_mods(password, must_change(ctx)),
            Flavour::ActiveDirectory => ad::password_mods(password, must_change(ctx)),
            Flavour::Ds389 => ds389::password_mods(password),
        }
    }

    /// The modifications that disable the entry at `dn`.
    async fn disable_mods(&self, dn: &str) -> Result<Vec<Mod<Vec<u8>>>, TargetError> {
        Ok(match self.cfg.flavour {
            Flavour::Openldap => openldap::enabled_mods(false),
            Flavour::ActiveDirectory => ad::uac_mods(self.read_uac(dn).await?, false),
            Flavour::Ds389 => ds389::enabled_mods(false),
        })
    }

    /// 389-ds: a password set with must-change must carry the server's mark
    /// (its policy sets it; homebase cannot). Without it the action fails
    /// rather than report a must-change that will not happen.
    async fn check_must_change(
        &self,
        ctx: &ActionContext<'_>,
        dn: &str,
    ) -> Result<(), TargetError> {
        if self.cfg.flavour != Flavour::Ds389 || ctx.secrets.password.is_none() || !must_change(ctx)
        {
            return Ok(());
        }
        let mut conn = self.conn(dn).await?;
        let entry = conn
            .lookup(dn, &[ds389::EXPIRATION_ATTR])
            .await
            .map_err(|e| classify(dn, e))?
            .ok_or_else(|| TargetError::permanent(format!("{dn}: no such entry")))?;
        if ds389::must_change_marked(&entry) {
            return Ok(());
        }
        Err(TargetError::permanent(format!(
            "{dn}: the password was set but the server did not mark it to be changed at the next login ({} is not {}); set `passwordMustChange: on` in the password policy that covers this entry (cn=config, or its fine-grained policy), and bind as the Directory Manager or a password administrator (passwordAdminDN) that may read {} (docs/389ds.md)",
            ds389::EXPIRATION_ATTR,
            ds389::MUST_CHANGE_MARK,
            ds389::EXPIRATION_ATTR,
        )))
    }

    /// Every user entry below the base (those with a username or a staff
    /// id), flavour-neutral.
    async fn search_users(&self, conn: &mut Conn<'_>) -> Result<Vec<Found>> {
        let (filter, attrs) = match self.cfg.flavour {
            Flavour::Openldap => (openldap::USER_FILTER, openldap::USER_ATTRS),
            Flavour::ActiveDirectory => (ad::USER_FILTER, ad::USER_ATTRS),
            Flavour::Ds389 => (openldap::USER_FILTER, ds389::USER_ATTRS),
        };
        let entries = conn
            .search_all(&self.cfg.base_dn, filter, attrs)
            .await
            .map_err(|e| anyhow!("{}", classify(&self.cfg.base_dn, e)))?;
        Ok(entries
            .iter()
            .map(|e| match self.cfg.flavour {
                Flavour::Openldap => openldap::parse(e),
                Flavour::ActiveDirectory => ad::parse(e),
                Flavour::Ds389 => ds389::parse(e),
            })
            .collect())
    }

    /// A pooled connection; failing to get one is transient.
    async fn conn(&self, what: &str) -> Result<Conn<'_>, TargetError> {
        self.pool.get().await.map_err(|e| classify(what, e))
    }

    async fn allocate_uid(&self, person: &str) -> Result<u32, TargetError> {
        let Some(posix) = &self.cfg.posix else {
            return Err(TargetError::permanent("no posix numbers configured"));
        };
        let mut guard = self.uids.lock().await;
        if guard.is_none() {
            let mut conn = self.conn(&self.cfg.base_dn).await?;
            let entries = conn
                .search_all(&self.cfg.base_dn, "(uidNumber=*)", &["uidNumber"])
                .await
                .map_err(|e| classify(&self.cfg.base_dn, e))?;
            *guard = Some(UidAllocator::new(&entries, posix.uid_first));
        }
        let allocator = guard
            .as_mut()
            .ok_or_else(|| TargetError::permanent("uid allocator"))?;
        allocator.allocate(person, posix.uid_last).ok_or_else(|| {
            TargetError::permanent(format!(
                "uidNumbers {}..{} of target \"{}\" are used up",
                posix.uid_first, posix.uid_last, self.name
            ))
        })
    }

    fn id_attr(&self) -> &'static str {
        match self.cfg.flavour {
            Flavour::Openldap | Flavour::Ds389 => openldap::ID_ATTR,
            Flavour::ActiveDirectory => ad::ID_ATTR,
        }
    }

    fn container_dn(&self, ou: Option<&str>) -> String {
        join_dn(&[ou.unwrap_or(&self.cfg.users_ou), &self.cfg.base_dn])
    }

    fn user_dn(&self, username: &str, ou: Option<&str>) -> String {
        let rdn = match self.cfg.flavour {
            Flavour::Openldap | Flavour::Ds389 => openldap::rdn(username),
            Flavour::ActiveDirectory => ad::rdn(username),
        };
        join_dn(&[&rdn, &self.container_dn(ou)])
    }

    fn groups_container(&self) -> String {
        join_dn(&[&self.cfg.groups_ou, &self.cfg.base_dn])
    }

    fn group_dn(&self, group: &str) -> String {
        let attr = match self.cfg.flavour {
            Flavour::Openldap | Flavour::Ds389 => "cn",
            Flavour::ActiveDirectory => "CN",
        };
        join_dn(&[
            &format!("{attr}={}", dn_value(group)),
            &self.groups_container(),
        ])
    }

    fn is_known(&self, dn: &str) -> bool {
        self.known
            .lock()
            .map(|k| k.contains(&normalize_dn(dn)))
            .unwrap_or(false)
    }

    fn remember(&self, dn: &str) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(normalize_dn(dn));
        }
    }
}

/// uidNumbers: the lowest free one in the range, once per person.
struct UidAllocator {
    used: BTreeSet<u32>,
    next: u32,
    given: HashMap<String, u32>,
}

impl UidAllocator {
    fn new(entries: &[SearchEntry], first: u32) -> UidAllocator {
        UidAllocator {
            used: entries
                .iter()
                .filter_map(|e| entry::first(e, "uidNumber")?.trim().parse().ok())
                .collect(),
            next: first,
            given: HashMap::new(),
        }
    }

    fn allocate(&mut self, person: &str, last: u32) -> Option<u32> {
        if let Some(uid) = self.given.get(person) {
            return Some(*uid);
        }
        while self.next <= last && self.used.contains(&self.next) {
            self.next += 1;
        }
        if self.next > last {
            return None;
        }
        let uid = self.next;
        self.used.insert(uid);
        self.given.insert(person.to_string(), uid);
        Some(uid)
    }
}

/// Profiles targeting an Active Directory must keep usernames within
/// sAMAccountName's 20 characters.
fn check_profiles(name: &str, cfg: &Resolved, settings: &Settings) -> Result<()> {
    if cfg.flavour != Flavour::ActiveDirectory {
        return Ok(());
    }
    for profile in settings.profiles.profiles.values() {
        let target = crate::plan::resolve_target(
            &settings.config,
            Area::Directory,
            profile.account.target.as_deref(),
        );
        if target.as_deref() == Ok(name) && profile.account.max_length > 20 {
            return Err(Failure::usage(format!(
                "profile {}: account.max_length {} is longer than Active Directory's 20 characters for sAMAccountName (target \"{name}\")",
                profile.name, profile.account.max_length
            ))
            .into());
        }
    }
    Ok(())
}

/// Groups homebase manages on this target: every profile's groups and those
/// the state store recorded. Memberships in other groups are not ours to
/// report or change. Lower-case name → the spelling the profiles use.
fn managed_groups(
    settings: &Settings,
    stored: &BTreeMap<String, Account>,
) -> HashMap<String, String> {
    let mut managed = HashMap::new();
    let names = settings
        .profiles
        .profiles
        .values()
        .flat_map(|p| p.account.groups.iter())
        .chain(stored.values().flat_map(|a| a.groups.iter()));
    for name in names {
        managed
            .entry(name.to_lowercase())
            .or_insert_with(|| name.clone());
    }
    managed
}

/// The managed group a group DN names, if it is one: directly in the groups
/// container, named by its first RDN.
fn group_name(dn: &str, container: &str, managed: &HashMap<String, String>) -> Option<String> {
    let (rdn, parent) = escape::split_first(dn);
    if !same_dn(parent, container) {
        return None;
    }
    let value = escape::parse_dn(rdn)?.into_iter().next()?.value;
    managed.get(&value.to_lowercase()).cloned()
}

/// The plan's "a, b" list of groups.
fn split_groups(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default()
        .split(", ")
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

fn must_change(ctx: &ActionContext<'_>) -> bool {
    ctx.profile.is_none_or(|p| p.account.must_change_password)
}

fn uac_of(entry: &SearchEntry) -> u32 {
    entry::first(entry, ad::UAC_ATTR)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(ad::UAC_NORMAL)
}

fn is_loopback(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or_default();
    let host = host.split('/').next().unwrap_or_default();
    let host = host
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']') || h.starts_with('['))
        .map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

/// Why connecting failed, for the admin: bad credentials and refused clear
/// text are configuration errors (exit 2); a server that is not there is not.
fn connect_error(name: &str, cfg: &Resolved, err: LdapError) -> anyhow::Error {
    match code_of(&err) {
        Some(rc::INVALID_CREDENTIALS) => Failure::usage_with_hint(
            format!(
                "target \"{name}\": the directory refused the bind as {}: {}",
                cfg.bind_dn,
                classify("bind", err)
            ),
            "check bind_dn and the password in bind_password_env / bind_password_file",
        )
        .into(),
        Some(8 | 13) => Failure::usage_with_hint(
            format!(
                "target \"{name}\": the directory wants an encrypted connection: {}",
                classify("bind", err)
            ),
            "use an ldaps:// URL or set `starttls: true`",
        )
        .into(),
        _ => {
            let text = err.to_string();
            let hint = if text.contains("certificate") || text.contains("Certificate") {
                " (is the server's CA in `ca_file`, and the URL's host in its certificate?)"
            } else {
                ""
            };
            anyhow::Error::new(err).context(format!(
                "target \"{name}\": cannot connect to {}{hint}",
                cfg.url
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        assert!(is_loopback("ldap://127.0.0.1:3890"));
        assert!(is_loopback("ldap://localhost/"));
        assert!(is_loopback("ldap://[::1]:389"));
        assert!(!is_loopback("ldap://dc1.example.org"));
    }

    #[test]
    fn uids_are_unique_and_stable_per_person() {
        let existing = [entry::entry("uid=a,dc=x", &[("uidNumber", &["10000"])])];
        let mut alloc = UidAllocator::new(&existing, 10000);
        assert_eq!(alloc.allocate("P1", 10002), Some(10001));
        assert_eq!(alloc.allocate("P2", 10002), Some(10002));
        assert_eq!(alloc.allocate("P1", 10002), Some(10001));
        assert_eq!(alloc.allocate("P3", 10002), None);
    }

    #[test]
    fn group_names_from_dns() {
        let managed = HashMap::from([("staff".to_string(), "staff".to_string())]);
        let c = "ou=Groups,dc=x";
        assert_eq!(
            group_name("CN=Staff,OU=groups,DC=x", c, &managed).as_deref(),
            Some("staff")
        );
        assert_eq!(group_name("cn=staff,ou=Other,dc=x", c, &managed), None);
        assert_eq!(group_name("cn=printers,ou=Groups,dc=x", c, &managed), None);
        assert_eq!(split_groups(Some("a, b")), ["a", "b"]);
        assert!(split_groups(None).is_empty());
    }
}
