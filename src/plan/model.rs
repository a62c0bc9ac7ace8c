//! The plan: plain data, computed without side effects from (desired, observed),
//! serialised as `homebase.plan/v1`, printed by `report`, carried out by `apply`.

use std::net::IpAddr;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Area;

pub const PLAN_SCHEMA: &str = "homebase.plan/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Always [`PLAN_SCHEMA`].
    pub schema: String,
    pub homebase_version: String,
    /// The day the plan was computed for (expiry decisions depend on it).
    #[schemars(with = "String")]
    pub today: NaiveDate,
    pub inputs: Inputs,
    /// Digest of what the state store and targets held when planning.
    pub state_digest: String,
    /// Whether persons missing from the list are withdrawn.
    pub prune: bool,
    pub summary: Vec<TargetSummary>,
    pub warnings: Vec<Warning>,
    pub capacity: Vec<Capacity>,
    /// How long the rate-limited targets take to carry the plan out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub estimates: Vec<Estimate>,
    pub persons: Vec<PersonPlan>,
    /// Delivered bundles that are not on this machine and stay as they are
    /// (no new secrets): a count, not changes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bundles_elsewhere: usize,
    /// Server files to rewrite from the state store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRepair>,
}

impl Plan {
    /// A copy of everything but the persons (their list left empty): what
    /// surrounds them in the plan's JSON, for hashing them apart.
    pub fn without_persons(&self) -> Plan {
        let Plan {
            schema,
            homebase_version,
            today,
            inputs,
            state_digest,
            prune,
            summary,
            warnings,
            capacity,
            estimates,
            persons: _,
            bundles_elsewhere,
            files,
        } = self;
        Plan {
            schema: schema.clone(),
            homebase_version: homebase_version.clone(),
            today: *today,
            inputs: inputs.clone(),
            state_digest: state_digest.clone(),
            prune: *prune,
            summary: summary.clone(),
            warnings: warnings.clone(),
            capacity: capacity.clone(),
            estimates: estimates.clone(),
            persons: Vec::new(),
            bundles_elsewhere: *bundles_elsewhere,
            files: files.clone(),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A file homebase derives from the state store that must be written again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileRepair {
    pub path: String,
    pub reason: String,
}

/// What the plan was computed from; `apply --plan` recomputes the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Inputs {
    pub staff_files: Vec<String>,
    pub config: String,
    /// SHA-256 over staff files, configuration, profiles and templates.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TargetSummary {
    pub target: String,
    pub kind: String,
    pub area: Area,
    pub create: usize,
    pub update: usize,
    pub remove: usize,
    pub unchanged: usize,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Not enough devices in stock.
    Shortage,
    /// Pool, stock or seats over 90 % used.
    Capacity,
    /// An account expires within the warning window.
    Expiring,
    /// Listed persons whose access ended before it was ever given.
    NotProvisioned,
    /// Persons known from earlier runs are missing from the list.
    Dropped,
    /// Offboarded persons the staff list still names.
    Offboarded,
    /// An OpenVPN CRL lapses soon (an expired CRL locks every client out).
    Crl,
    /// A directory holds further accounts carrying the staff id of an
    /// account homebase manages (second accounts, made by hand or before
    /// a state store was lost). Offboarding disables them too.
    Unmanaged,
    /// A directory does not store some account fields (its schema says
    /// so): they are left out, never planned as a change.
    NotStored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
    /// Staff ids concerned, where the warning is about persons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    /// `address-pool`, `stock` or `seats`.
    pub kind: String,
    pub name: String,
    pub used: u64,
    pub total: u64,
    pub percent: f64,
}

/// The time a rate-limited target needs for its part of the plan: the
/// admin must know before starting whether a run takes minutes or hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Estimate {
    pub target: String,
    pub kind: String,
    /// Requests (or actions, for targets limited per action) the plan sends.
    pub requests: u64,
    /// The rate the target allows.
    pub per_minute: f64,
    /// `requests` at the pace homebase keeps.
    pub minutes: f64,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    New,
    Changed,
    Unchanged,
    /// Access is withdrawn (offboarded, expired or pruned).
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonPlan {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub profile: String,
    pub department: Option<String>,
    #[schemars(with = "Option<String>")]
    pub expires: Option<NaiveDate>,
    pub status: PersonStatus,
    /// Why the person is withdrawn, if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why a new username is not the profile pattern's own (it got a
    /// suffix): who holds the name ("`tmeyer` is held by …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_reason: Option<String>,
    /// The person's profile says `sensitive: true`: the review lists them
    /// among what stands out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    pub actions: Vec<Action>,
}

impl PersonPlan {
    pub fn has_changes(&self) -> bool {
        self.actions.iter().any(|a| a.op != Op::Unchanged)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Update,
    Unchanged,
    /// Withdraw: disable (or delete) the account, remove the peer, check the device in.
    Remove,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Unchanged => "unchanged",
            Op::Remove => "remove",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "RawAction")]
pub struct Action {
    /// Where the action goes. Written as its name in JSON (`"wg0"`,
    /// `"office-suite"`, `"bundles"`); the resource says which of the three it is.
    #[schemars(with = "String")]
    pub target: ActionTarget,
    pub op: Op,
    #[serde(flatten)]
    pub resource: Resource,
    /// For updates: which fields change, from what to what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The remote system's id of the person there (DN, SCIM id), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
}

/// Where an action goes: a configured target, a licence seat pool (booked in
/// the state store), or the person's bundle folder homebase writes itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionTarget {
    /// A target of `homebase.yaml`, by name.
    Target(String),
    /// A licence seat pool, by name.
    SeatPool(String),
    /// The per-person bundle folders.
    Bundles,
}

impl ActionTarget {
    /// The name in plans, reports, the journal and progress counters.
    pub fn name(&self) -> &str {
        match self {
            ActionTarget::Target(name) | ActionTarget::SeatPool(name) => name,
            ActionTarget::Bundles => "bundles",
        }
    }

    /// The configured target's name, if the action goes to one.
    pub fn target(&self) -> Option<&str> {
        match self {
            ActionTarget::Target(name) => Some(name),
            ActionTarget::SeatPool(_) | ActionTarget::Bundles => None,
        }
    }
}

impl std::fmt::Display for ActionTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ActionTarget {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// An action as written in JSON: the target by name, typed by its resource.
#[derive(Deserialize, JsonSchema)]
struct RawAction {
    target: String,
    op: Op,
    #[serde(flatten)]
    resource: Resource,
    #[serde(default)]
    changes: Vec<Change>,
    #[serde(default)]
    remote_id: Option<String>,
}

impl From<RawAction> for Action {
    fn from(raw: RawAction) -> Action {
        let target = match raw.resource {
            Resource::License(_) => ActionTarget::SeatPool(raw.target),
            Resource::Bundle(_) => ActionTarget::Bundles,
            Resource::Account(_) | Resource::VpnPeer(_) | Resource::Device(_) => {
                ActionTarget::Target(raw.target)
            }
        };
        Action {
            target,
            op: raw.op,
            resource: raw.resource,
            changes: raw.changes,
            remote_id: raw.remote_id,
        }
    }
}

impl Action {
    pub fn area(&self) -> Area {
        match self.resource {
            Resource::Account(_) => Area::Directory,
            Resource::VpnPeer(_) => Area::Vpn,
            Resource::Device(_) | Resource::License(_) => Area::Inventory,
            Resource::Bundle(_) => Area::Bundle,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "resource", rename_all = "snake_case")]
pub enum Resource {
    Account(Account),
    VpnPeer(Peer),
    Device(Device),
    License(License),
    /// The person's bundle folder (VPN config, letters, handover sheet).
    Bundle(Bundle),
}

/// A directory account as homebase wants it. No password: that is generated at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    pub username: String,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    pub email: String,
    pub department: Option<String>,
    pub groups: Vec<String>,
    pub ou: Option<String>,
    #[schemars(with = "Option<String>")]
    pub expires: Option<NaiveDate>,
    pub enabled: bool,
}

/// A VPN peer: the person's tunnel address. Keys are generated at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Peer {
    pub address: IpAddr,
    pub preshared_key: bool,
    #[schemars(with = "Option<String>")]
    pub expires: Option<NaiveDate>,
    /// The public key of a peer taken over by `homebase adopt`, whose private
    /// key homebase never had: it is kept, and the bundle says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_key: Option<String>,
    /// All of the person's traffic goes through the tunnel (the profile's
    /// `tunnel: full`): the review lists such a peer as sensitive.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_tunnel: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Device {
    pub asset_tag: String,
    pub serial: String,
    pub kind: String,
    pub model: String,
}

/// A bundle is (re)written when anything of the person's access changes;
/// `new_secrets` when keys and the password are (re)issued with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Bundle {
    pub path: String,
    pub new_secrets: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct License {
    pub pool: String,
}

impl Plan {
    /// Whether applying this plan would change anything.
    pub fn has_changes(&self) -> bool {
        !self.files.is_empty() || self.persons.iter().any(PersonPlan::has_changes)
    }
}
