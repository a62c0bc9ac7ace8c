//! Planning: desired state from persons and profiles, allocation of usernames,
//! addresses and devices, and the diff against what is observed.

mod address;
mod build;
pub mod digest;
mod model;
mod observed;
mod rotation;
mod username;

pub use address::is_assignable;
pub use build::{
    assign_profiles, build, bundle_shows_change, not_provisioned, resolve_target, summarize,
    PlanInput,
};
pub use model::*;
pub use observed::{IssuedCert, KnownPerson, Observed, StockItem};
pub use rotation::Rotation;
#[cfg(test)]
mod tests;
