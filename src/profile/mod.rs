//! Profiles: loading (shipped or from a folder), `extends` merging, `match` rules.

mod model;

use std::collections::BTreeMap;
use std::path::Path;

pub use model::*;

use crate::error::Problems;
use crate::input::Person;

/// Every profile, resolved (`extends` merged), by name.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    pub profiles: BTreeMap<String, Profile>,
}

impl ProfileSet {
    /// The shipped profiles (`dir: None`) or those of a folder.
    pub fn load(dir: Option<&Path>) -> Result<ProfileSet, Problems> {
        let _ = dir;
        todo!("profile::load")
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The profile for a person: their `profile` column, else the best match
    /// rule, else `default`. `Err` says why none fits (for a `Problem`).
    pub fn choose(&self, person: &Person, default: &str) -> Result<&Profile, String> {
        let _ = (person, default);
        todo!("profile::choose")
    }
}
