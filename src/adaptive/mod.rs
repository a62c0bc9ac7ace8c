//! Adaptive concurrency: how many requests a target takes in flight, found
//! while running instead of guessed with `-j`. A pure controller decides;
//! the limiter applies its decisions to the requests of one target.

mod controller;
mod limiter;

pub use limiter::{Limiter, Outcome, Permit, Snapshot};
