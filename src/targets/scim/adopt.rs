//! `homebase adopt` on a SCIM service provider: users by `externalId` (the
//! staff id), with their `userName`, groups and the server's `id`, as the
//! read of a plan sees them — as if every listed person were on our books.
//! What SCIM does not hold (the `ou`, the end of access) is homebase's own
//! bookkeeping for this kind: it is taken from what the plan wants.

use std::collections::BTreeMap;

use anyhow::Result;

use super::ScimTarget;
use crate::plan::{Account, KnownPerson, Observed};
use crate::targets::ExistingAccount;

impl ScimTarget {
    /// The users carrying a staff id: those of `staff` with their account
    /// as read, the others (staff ids nobody listed) with their userName.
    pub async fn existing_accounts(
        &self,
        name: &str,
        staff: &BTreeMap<String, KnownPerson>,
        wanted: &BTreeMap<String, Account>,
    ) -> Result<Vec<ExistingAccount>> {
        let mut observed = Observed {
            persons: staff.clone(),
            ..Observed::default()
        };
        observed.accounts.insert(name.to_string(), wanted.clone());
        self.read(name, &mut observed).await?;
        Ok(super::super::existing_from_read(name, observed))
    }
}
