//! The `snipeit` inventory: devices handed out by checking Snipe-IT assets
//! out to the person's Snipe-IT user, and back in on withdrawal.
//!
//! - `connect` reads the token, builds a verified TLS client and resolves the
//!   configured categories and models (the health check: a wrong token or a
//!   misspelt category stops `plan` before anything happens).
//! - `read` lists the assets of the configured kinds (500 per page) and the
//!   users: stock, who holds what (by the user's employee number = staff id),
//!   and each person's Snipe-IT user id.
//! - `apply` finds or creates the person's user (by employee number, else by
//!   username) and checks the asset out to it, or checks it in.
//!
//! Snipe-IT throttles every API user (120 requests a minute by default): all
//! requests of the target go through one [`pace::Pace`]. Within a process the
//! pace and what `read` saw are shared by every connection to the same
//! target, so the plan's reading and the apply's writing share one budget and
//! the apply needs no second listing.

mod adopt;
mod client;
mod config;
mod model;
mod pace;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Url;
use tokio::sync::OnceCell;

use self::client::{ApiError, Client, Token};
pub use self::config::{Names, SnipeitConfig, SnipeitKind};
use self::model::{unescape, Checkout, Hardware, NewUser, User};
use crate::error::Failure;
use crate::plan::{Device, Estimate, Observed, Op, PersonPlan, Resource, StockItem};
use crate::settings::Settings;
use crate::targets::{ActionContext, TargetError};

pub use pace::HEADROOM;

/// A connected Snipe-IT target.
pub struct Snipeit {
    name: String,
    config: SnipeitConfig,
    client: Client,
    shared: Arc<Shared>,
    /// One find-or-create per person, however many devices they get at once.
    users: Mutex<HashMap<String, Arc<OnceCell<u64>>>>,
}

/// What the target's requests share: the pace, the catalogue checked at
/// connect, and what `read` saw (the connection `apply` uses is the same).
struct Shared {
    pace: Arc<pace::Pace>,
    catalogue: OnceCell<Catalogue>,
    snapshot: Mutex<Option<Snapshot>>,
}

/// The configured kinds resolved to Snipe-IT ids.
struct Catalogue {
    kinds: Vec<KindQuery>,
    /// The status label id of `checkout_status:`, sent with each checkout.
    checkout_status: Option<u64>,
}

fn catalogue_of(shared: &Shared) -> Option<&Catalogue> {
    shared.catalogue.get()
}

struct KindQuery {
    kind: String,
    /// Listed by category (then narrowed to `models` if any), else by model.
    categories: Vec<u64>,
    models: Vec<u64>,
}

/// What `read` saw: enough to act without listing again.
#[derive(Default)]
struct Snapshot {
    /// Asset tag → the asset.
    assets: HashMap<String, AssetRef>,
    /// Employee number → user id.
    by_employee: HashMap<String, u64>,
    /// Lower-cased username → (user id, employee number).
    by_username: HashMap<String, (u64, Option<String>)>,
}

#[derive(Debug, Clone, Copy)]
struct AssetRef {
    id: u64,
    /// The user holding it, if it is checked out to a user.
    holder: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Snipeit {
    /// The gate of this target's requests in flight.
    pub fn limiter(&self) -> Arc<crate::adaptive::Limiter> {
        self.client.limiter().clone()
    }

    /// Read the token, build the client, check the token and the configured
    /// categories and models against the server.
    pub async fn connect(
        name: &str,
        config: &SnipeitConfig,
        settings: &Settings,
    ) -> Result<Snipeit> {
        let token = read_token(name, config, settings)?;
        let base = Url::parse(&config.url).map_err(|e| {
            Failure::usage(format!("target \"{name}\": url \"{}\": {e}", config.url))
        })?;
        let ca_file = config.ca_file.as_deref().map(|p| settings.path(p));
        let tls = crate::targets::common::tls::client_config(ca_file.as_deref())
            .map_err(|e| Failure::usage(format!("target \"{name}\": ca_file: {e}")))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(config.timeouts.timeout())
            .connect_timeout(config.timeouts.connect_timeout())
            .user_agent(concat!("homebase/", env!("CARGO_PKG_VERSION")))
            .build()
            .with_context(|| format!("target \"{name}\": cannot set up the HTTP client"))?;
        let shared = Arc::new(Shared {
            pace: Arc::new(pace::Pace::new(config.requests_per_minute)),
            catalogue: OnceCell::new(),
            snapshot: Mutex::new(None),
        });
        let limiter = crate::adaptive::Limiter::new(
            config.limits.ceiling(settings.jobs),
            config.limits.adaptive(),
        );
        let client = Client::new(http, &base, token, shared.pace.clone(), limiter)
            .with_trace(crate::targets::common::Trace::new(name, &settings.output));
        let target = Snipeit {
            name: name.to_string(),
            config: config.clone(),
            client,
            shared,
            users: Mutex::default(),
        };
        target
            .shared
            .catalogue
            .get_or_try_init(|| target.catalogue())
            .await?;
        Ok(target)
    }

    /// The health check: the token works, and every configured category and
    /// model exists.
    async fn catalogue(&self) -> Result<Catalogue> {
        let name = &self.name;
        let categories = self.client.categories().await.map_err(|e| match e {
            ApiError::Refused { status: 401, .. } => Failure::usage_with_hint(
                format!("target \"{name}\": Snipe-IT refused the API token: {e}"),
                "check the token in `token_env`/`token_file`",
            )
            .into(),
            ApiError::Refused { status: 403, .. } => {
                Failure::usage_with_hint(format!("target \"{name}\": {e}"), PERMISSIONS_HINT).into()
            }
            other => anyhow::Error::new(other).context(format!(
                "target \"{name}\": cannot read categories from {}",
                self.config.url
            )),
        })?;
        let models = self.client.models().await.map_err(|e| match e {
            ApiError::Refused { status: 403, .. } => {
                Failure::usage_with_hint(format!("target \"{name}\": {e}"), PERMISSIONS_HINT).into()
            }
            other => {
                anyhow::Error::new(other).context(format!("target \"{name}\": cannot read models"))
            }
        })?;
        let checkout_status = self.check_statuses().await?;
        let mut unknown = Vec::new();
        let mut kinds = Vec::new();
        for (kind, select) in &self.config.kinds {
            let ids_of = |wanted: &[String], rows: &mut dyn Iterator<Item = (u64, String)>| {
                let rows: Vec<(u64, String)> = rows.collect();
                let mut ids = Vec::new();
                let mut missing = Vec::new();
                for want in wanted {
                    let found: Vec<u64> = rows
                        .iter()
                        .filter(|(_, n)| unescape(n).eq_ignore_ascii_case(want))
                        .map(|(id, _)| *id)
                        .collect();
                    if found.is_empty() {
                        missing.push(want.clone());
                    }
                    ids.extend(found);
                }
                (ids, missing)
            };
            let (category_ids, missing) = ids_of(
                select.category.as_slice(),
                &mut categories.iter().map(|c| (c.id, c.name.clone())),
            );
            unknown.extend(
                missing
                    .into_iter()
                    .map(|m| format!("category \"{m}\" (kind {kind})")),
            );
            let (model_ids, missing) = ids_of(
                select.model.as_slice(),
                &mut models.iter().map(|m| (m.id, m.name.clone())),
            );
            unknown.extend(
                missing
                    .into_iter()
                    .map(|m| format!("model \"{m}\" (kind {kind})")),
            );
            kinds.push(KindQuery {
                kind: kind.clone(),
                categories: category_ids,
                models: model_ids,
            });
        }
        if !unknown.is_empty() {
            let known: Vec<String> = categories.iter().map(|c| unescape(&c.name)).collect();
            return Err(Failure::usage_with_hint(
                format!("target \"{name}\": not in Snipe-IT: {}", unknown.join(", ")),
                format!("its categories are: {}", known.join(", ")),
            )
            .into());
        }
        Ok(Catalogue {
            kinds,
            checkout_status,
        })
    }

    /// `status:` and `checkout_status:` must name deployable status labels:
    /// Snipe-IT checks out only assets whose status is deployable, and
    /// refuses a checkout's `status_id` that is not. Returns the id of
    /// `checkout_status:`.
    async fn check_statuses(&self) -> Result<Option<u64>> {
        let name = &self.name;
        let settings = [
            ("status", self.config.status.as_deref()),
            ("checkout_status", self.config.checkout_status.as_deref()),
        ];
        if settings.iter().all(|(_, v)| v.is_none()) {
            return Ok(None);
        }
        let labels = self.client.status_labels().await.map_err(|e| match e {
            ApiError::Refused { status: 403, .. } => {
                Failure::usage_with_hint(format!("target \"{name}\": {e}"), PERMISSIONS_HINT).into()
            }
            other => anyhow::Error::new(other)
                .context(format!("target \"{name}\": cannot read status labels")),
        })?;
        let deployable: Vec<String> = labels
            .iter()
            .filter(|l| l.kind == "deployable")
            .map(|l| unescape(&l.name))
            .collect();
        let mut problems = Vec::new();
        let mut checkout_status = None;
        for (key, wanted) in settings {
            let Some(wanted) = wanted else { continue };
            let found = labels
                .iter()
                .find(|l| unescape(&l.name).eq_ignore_ascii_case(wanted));
            match found {
                Some(label) if label.kind == "deployable" => {
                    if key == "checkout_status" {
                        checkout_status = Some(label.id);
                    }
                }
                Some(label) => problems.push(format!(
                    "targets.{name}.{key}: status \"{wanted}\" is {}, not deployable: Snipe-IT checks out only assets with a deployable status",
                    if label.kind.is_empty() { "of an unknown type" } else { label.kind.as_str() }
                )),
                None => problems.push(format!(
                    "targets.{name}.{key}: no status label \"{wanted}\" in Snipe-IT"
                )),
            }
        }
        if !problems.is_empty() {
            return Err(Failure::usage_with_hint(
                problems.join("; "),
                format!(
                    "its deployable status labels are: {}",
                    deployable.join(", ")
                ),
            )
            .into());
        }
        Ok(checkout_status)
    }

    /// The stock, who holds what, and the persons' Snipe-IT user ids.
    pub async fn read(&self, observed: &mut Observed) -> Result<()> {
        let (items, users) = self.scan().await?;
        let mut remote_ids = BTreeMap::new();
        for user in &users {
            if let Some(number) = user.employee_num.as_deref().map(unescape) {
                if !number.is_empty() {
                    remote_ids.insert(number, user.id.to_string());
                }
            }
        }
        observed.stock.insert(self.name.clone(), items);
        observed.remote_ids.insert(self.name.clone(), remote_ids);
        Ok(())
    }

    /// List the configured kinds' assets and all users; remember them.
    async fn scan(&self) -> Result<(Vec<StockItem>, Vec<User>)> {
        let catalogue = self
            .shared
            .catalogue
            .get_or_try_init(|| self.catalogue())
            .await?;
        let mut snapshot = Snapshot::default();
        let mut items = Vec::new();
        for query in &catalogue.kinds {
            let mut rows: Vec<Hardware> = Vec::new();
            if query.categories.is_empty() {
                for id in &query.models {
                    rows.extend(self.hardware(("model_id", *id)).await?);
                }
            } else {
                for id in &query.categories {
                    let listed = self.hardware(("category_id", *id)).await?;
                    rows.extend(listed.into_iter().filter(|h| {
                        query.models.is_empty()
                            || h.model
                                .as_ref()
                                .is_some_and(|m| query.models.contains(&m.id))
                    }));
                }
            }
            for row in rows {
                // Listed only if asked for; never stock, never a device.
                if row
                    .status_label
                    .as_ref()
                    .is_some_and(|s| s.status_type == "archived")
                {
                    continue;
                }
                let tag = unescape(&row.asset_tag);
                if tag.is_empty() || snapshot.assets.contains_key(&tag) {
                    continue;
                }
                let user = row.assigned_to.as_ref().filter(|a| a.kind == "user");
                snapshot.assets.insert(
                    tag.clone(),
                    AssetRef {
                        id: row.id,
                        holder: user.map(|u| u.id),
                    },
                );
                items.push(StockItem {
                    available: row.assigned_to.is_none() && self.deployable(&row),
                    assigned_to: user
                        .and_then(|u| u.employee_number.as_deref())
                        .map(unescape)
                        .filter(|n| !n.is_empty()),
                    asset_tag: tag,
                    serial: row.serial.as_deref().map(unescape).unwrap_or_default(),
                    kind: query.kind.clone(),
                    model: row
                        .model
                        .as_ref()
                        .map(|m| unescape(&m.name))
                        .unwrap_or_default(),
                });
            }
        }
        let users = self
            .client
            .users()
            .await
            .with_context(|| format!("target \"{}\": cannot list users", self.name))?;
        for user in &users {
            let number = user
                .employee_num
                .as_deref()
                .map(unescape)
                .filter(|n| !n.is_empty());
            if let Some(number) = &number {
                snapshot.by_employee.insert(number.clone(), user.id);
            }
            snapshot
                .by_username
                .insert(unescape(&user.username).to_lowercase(), (user.id, number));
        }
        *lock(&self.shared.snapshot) = Some(snapshot);
        Ok((items, users))
    }

    async fn hardware(&self, filter: (&str, u64)) -> Result<Vec<Hardware>> {
        self.client
            .hardware(filter)
            .await
            .with_context(|| format!("target \"{}\": cannot list hardware", self.name))
    }

    /// Whether an asset's status lets it be handed out.
    fn deployable(&self, row: &Hardware) -> bool {
        let Some(status) = &row.status_label else {
            return false;
        };
        // Pending, undeployable and archived assets are never stock.
        status.status_type == "deployable"
            && self
                .config
                .status
                .as_ref()
                .is_none_or(|wanted| unescape(&status.name).eq_ignore_ascii_case(wanted))
    }

    /// Check a device out to the person, or back in.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let Resource::Device(device) = &ctx.action.resource else {
            return Ok(None);
        };
        match ctx.action.op {
            Op::Create => {
                let user = self.user_of(ctx).await?;
                self.check_out(device, user).await?;
                Ok(Some(user.to_string()))
            }
            Op::Remove => {
                self.check_in(ctx, device).await?;
                Ok(None)
            }
            Op::Update | Op::Unchanged => Ok(None),
        }
    }

    async fn asset(&self, tag: &str) -> Result<AssetRef, TargetError> {
        if lock(&self.shared.snapshot).is_none() {
            self.scan()
                .await
                .map_err(|e| TargetError::transient(format!("{e:#}")))?;
        }
        lock(&self.shared.snapshot)
            .as_ref()
            .and_then(|s| s.assets.get(tag).copied())
            .ok_or_else(|| {
                TargetError::permanent(format!(
                    "asset {tag} is not in Snipe-IT under the configured kinds (any more)"
                ))
            })
    }

    fn set_holder(&self, tag: &str, holder: Option<u64>) {
        if let Some(asset) = lock(&self.shared.snapshot)
            .as_mut()
            .and_then(|s| s.assets.get_mut(tag))
        {
            asset.holder = holder;
        }
    }

    async fn check_out(&self, device: &Device, user: u64) -> Result<(), TargetError> {
        let asset = self.asset(&device.asset_tag).await?;
        if asset.holder == Some(user) {
            return Ok(());
        }
        let body = Checkout {
            checkout_to_type: "user",
            assigned_user: user,
            status_id: catalogue_of(&self.shared).and_then(|c| c.checkout_status),
            note: "checked out by homebase",
        };
        match self.client.checkout(asset.id, &body).await {
            Ok(()) => {}
            // A retry after a lost answer: done already if it is ours.
            Err(ApiError::Api(message)) => {
                let now = self.client.asset(asset.id).await?;
                let holder = now.assigned_to.as_ref().filter(|a| a.kind == "user");
                if holder.map(|h| h.id) != Some(user) {
                    let by = holder
                        .and_then(|h| h.username.as_deref())
                        .map(|u| format!(" (checked out to {})", unescape(u)))
                        .unwrap_or_default();
                    return Err(TargetError::permanent(format!("Snipe-IT: {message}{by}")));
                }
            }
            Err(other) => return Err(other.into()),
        }
        self.set_holder(&device.asset_tag, Some(user));
        Ok(())
    }

    async fn check_in(&self, ctx: &ActionContext<'_>, device: &Device) -> Result<(), TargetError> {
        let asset = self.asset(&device.asset_tag).await?;
        // Never take a device from someone else: the plan saw it with this person.
        let ours = ctx
            .action
            .remote_id
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok())
            .or_else(|| {
                lock(&self.shared.snapshot)
                    .as_ref()
                    .and_then(|s| s.by_employee.get(ctx.person_id).copied())
            });
        match (asset.holder, ours) {
            (None, _) => return Ok(()),
            (Some(holder), Some(ours)) if holder != ours => {
                return Err(TargetError::permanent(
                    "checked out to another Snipe-IT user now; not checked in",
                ))
            }
            _ => {}
        }
        match self.client.checkin(asset.id).await {
            Ok(()) => {}
            Err(ApiError::Api(message)) => {
                let now = self.client.asset(asset.id).await?;
                if now.assigned_to.is_some() {
                    return Err(TargetError::permanent(format!("Snipe-IT: {message}")));
                }
            }
            Err(other) => return Err(other.into()),
        }
        self.set_holder(&device.asset_tag, None);
        Ok(())
    }

    /// The person's Snipe-IT user id: known from the plan, found, or created.
    async fn user_of(&self, ctx: &ActionContext<'_>) -> Result<u64, TargetError> {
        if let Some(id) = ctx
            .action
            .remote_id
            .as_deref()
            .and_then(|id| id.parse().ok())
        {
            return Ok(id);
        }
        let cell = lock(&self.users)
            .entry(ctx.person_id.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.find_or_create_user(ctx))
            .await
            .copied()
    }

    async fn find_or_create_user(&self, ctx: &ActionContext<'_>) -> Result<u64, TargetError> {
        if lock(&self.shared.snapshot).is_none() {
            self.scan()
                .await
                .map_err(|e| TargetError::transient(format!("{e:#}")))?;
        }
        let (by_employee, by_username) = {
            let snapshot = lock(&self.shared.snapshot);
            let s = snapshot.as_ref();
            (
                s.and_then(|s| s.by_employee.get(ctx.person_id).copied()),
                s.and_then(|s| s.by_username.get(&ctx.username.to_lowercase()).cloned()),
            )
        };
        if let Some(id) = by_employee {
            return Ok(id);
        }
        if let Some((id, number)) = by_username {
            return self.adopt_user(ctx, id, number.as_deref()).await;
        }
        let password = Token::new(unused_password());
        let person = ctx.person;
        let given = person
            .map(|p| p.given_name.as_str())
            .filter(|g| !g.is_empty());
        let new = NewUser {
            // Snipe-IT requires a first name; people with one name have only a family name.
            first_name: given
                .or(person.map(|p| p.family_name.as_str()))
                .unwrap_or(ctx.username),
            last_name: given.and(person.map(|p| p.family_name.as_str())),
            username: ctx.username,
            password: password.expose(),
            password_confirmation: password.expose(),
            employee_num: ctx.person_id,
            email: person.and_then(|p| p.email.as_deref()),
            activated: false,
            notes: "Created by homebase",
        };
        match self.client.create_user(&new).await {
            Ok(user) => Ok(user.id),
            // Someone created the username since we listed the users.
            Err(ApiError::Api(message)) if message.contains("username") => {
                let found = self.client.users_where("username", ctx.username).await?;
                match found
                    .iter()
                    .find(|u| unescape(&u.username).eq_ignore_ascii_case(ctx.username))
                {
                    Some(user) => {
                        let number = user.employee_num.as_deref().map(unescape);
                        self.adopt_user(ctx, user.id, number.as_deref()).await
                    }
                    None => Err(TargetError::permanent(format!(
                        "cannot create Snipe-IT user {}: {message}",
                        ctx.username
                    ))),
                }
            }
            Err(ApiError::Api(message)) => Err(TargetError::permanent(format!(
                "cannot create Snipe-IT user {}: {message}",
                ctx.username
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// An existing user with the person's username: theirs if it has no
    /// employee number yet (it gets the staff id) or already the staff id.
    async fn adopt_user(
        &self,
        ctx: &ActionContext<'_>,
        id: u64,
        number: Option<&str>,
    ) -> Result<u64, TargetError> {
        match number.filter(|n| !n.is_empty()) {
            None => {
                self.client.set_employee_num(id, ctx.person_id).await?;
                Ok(id)
            }
            Some(n) if n == ctx.person_id => Ok(id),
            Some(n) => Err(TargetError::permanent(format!(
                "Snipe-IT user {} has employee number {n}, not {}: a different person? Resolve it in Snipe-IT",
                ctx.username, ctx.person_id
            ))),
        }
    }
}

/// What a 403 at connect should point at.
const PERMISSIONS_HINT: &str = "give the API user the permissions the README lists under Snipe-IT (view categories, models, assets, users and status labels; create and edit users; check out and check in assets)";

/// A password for a Snipe-IT user nobody logs in as: 64 characters with
/// lower and upper case letters, digits and symbols, so that it passes any
/// of Snipe-IT's password rules (`pwd_secure_min` up to 64, letters, case
/// difference, numbers, symbols, uncommon). Below bcrypt's 72 bytes. Never
/// kept, logged or shown.
fn unused_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    const SYMBOLS: &[u8] = b"!#%+-.:=?@_~";
    let mut rng = rand::thread_rng();
    let mut chars: Vec<u8> = Vec::with_capacity(64);
    for set in [LOWER, UPPER, DIGITS, SYMBOLS] {
        for _ in 0..4 {
            chars.push(set[rng.gen_range(0..set.len())]);
        }
    }
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    while chars.len() < 64 {
        chars.push(all[rng.gen_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    String::from_utf8(chars).expect("ASCII")
}

/// Requests the plan sends to a Snipe-IT target, and how long that takes.
pub fn estimate(name: &str, config: &SnipeitConfig, persons: &[PersonPlan]) -> Option<Estimate> {
    let mut requests = 0u64;
    for person in persons {
        let devices = person.actions.iter().filter(|a| {
            a.target.target() == Some(name) && matches!(a.resource, Resource::Device(_))
        });
        let mut new_user = false;
        for action in devices {
            match action.op {
                Op::Create => {
                    requests += 1;
                    new_user |= action.remote_id.is_none();
                }
                Op::Remove => requests += 1,
                Op::Update | Op::Unchanged => {}
            }
        }
        requests += u64::from(new_user);
    }
    (requests > 0).then(|| {
        let per_minute = f64::from(config.requests_per_minute);
        Estimate {
            target: name.to_string(),
            kind: "snipeit".to_string(),
            requests,
            per_minute,
            minutes: requests as f64 / (per_minute * HEADROOM),
        }
    })
}

/// The API token from the environment or a file; never from the command line.
fn read_token(name: &str, config: &SnipeitConfig, settings: &Settings) -> Result<Token> {
    let token = config
        .token_source()
        .read(name, |p| settings.path(p), |var| std::env::var(var).ok())
        .map_err(Failure::usage)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_pass_every_complexity_rule() {
        for _ in 0..200 {
            let p = unused_password();
            assert_eq!(p.len(), 64);
            assert!(p.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(p.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(p.bytes().any(|b| b.is_ascii_digit()));
            assert!(p.bytes().any(|b| b.is_ascii_punctuation()));
        }
        assert_ne!(unused_password(), unused_password());
    }
}
