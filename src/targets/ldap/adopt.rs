//! `homebase adopt` on an LDAP directory (both flavours): the user entries
//! that carry a staff id of the staff list (`employeeNumber`, AD's
//! `employeeID`), with their usernames, DNs and group memberships as the
//! read of a plan sees them — as if every listed person were on our books.

use std::collections::BTreeMap;

use anyhow::Result;

use super::LdapTarget;
use crate::plan::{KnownPerson, Observed};
use crate::settings::Settings;
use crate::targets::ExistingAccount;

impl LdapTarget {
    /// The entries carrying a staff id: those of `staff` with their account
    /// as read, the others (staff ids nobody listed) with their username.
    pub async fn existing_accounts(
        &self,
        settings: &Settings,
        staff: &BTreeMap<String, KnownPerson>,
    ) -> Result<Vec<ExistingAccount>> {
        let mut observed = Observed {
            persons: staff.clone(),
            ..Observed::default()
        };
        self.read(settings, &mut observed).await?;
        Ok(super::super::existing_from_read(&self.name, observed))
    }
}
