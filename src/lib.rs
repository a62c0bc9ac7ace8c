//! homebase as a library: the binary (`main.rs`) is a thin shell around it,
//! and benchmarks and tests can reach the parts.

pub mod adaptive;
pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod input;
pub mod letters;
pub mod output;
pub mod plan;
pub mod profile;
pub mod render;
pub mod report;
pub mod schema;
pub mod settings;
pub mod state;
pub mod targets;
pub mod threads;
pub mod today;
