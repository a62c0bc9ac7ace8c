//! `homebase adopt` on a SCIM service provider: users by `externalId` (the
//! staff id), with their `userName`, groups and the server's `id`, as the
//! read of a plan sees them — as if every listed person were on our books.

use std::collections::BTreeMap;

use anyhow::Result;

use super::ScimTarget;
use crate::plan::{KnownPerson, Observed};
use crate::targets::ExistingAccount;

impl ScimTarget {
    /// The users carrying a staff id: those of `staff` with their account
    /// as read, the others (staff ids nobody listed) with their userName.
    pub async fn existing_accounts(
        &self,
        name: &str,
        staff: &BTreeMap<String, KnownPerson>,
    ) -> Result<Vec<ExistingAccount>> {
        let mut observed = Observed {
            persons: staff.clone(),
            ..Observed::default()
        };
        self.read(name, &mut observed).await?;
        Ok(super::super::existing_from_read(name, observed))
    }
}
