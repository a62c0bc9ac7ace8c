//! Planning: desired state from persons and profiles, allocation of usernames,
//! addresses and devices, and the diff against what is observed.

mod address;
mod build;
pub mod digest;
mod model;
mod observed;
mod username;

pub use address::is_assignable;
pub use build::{assign_profiles, build, not_provisioned, resolve_target, PlanInput};
pub use model::*;
pub use observed::{IssuedCert, KnownPerson, Observed, StockItem};
#[cfg(test)]
mod tests;
