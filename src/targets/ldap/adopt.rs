//! `homebase adopt` on an LDAP directory (every flavour): the user entries
//! that carry a staff id of the staff list (`employeeNumber`, AD's
//! `employeeID`), with their usernames, DNs and group memberships as the
//! read of a plan sees them — as if every listed person were on our books —
//! and the user entries without a staff id, with their uid, mail and name,
//! for the generic matching by e-mail, username and full name (an entry
//! adopted so is found again by its username on our books).

use std::collections::BTreeMap;

use anyhow::Result;

use super::{container_below, same_dn, LdapTarget};
use crate::plan::{Account, KnownPerson, Observed};
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
        let mut existing = super::super::existing_from_read(&self.name, observed);
        existing.extend(self.entries_without_staff_id().await?);
        Ok(existing)
    }

    /// User entries that carry no staff id.
    async fn entries_without_staff_id(&self) -> Result<Vec<ExistingAccount>> {
        let mut conn = self.pool.get().await?;
        let found = self.search_users(&mut conn).await?;
        Ok(found
            .into_iter()
            .filter(|f| f.staff_id.is_none() && f.username.is_some())
            .map(|f| {
                let container = container_below(&f.dn, &self.cfg.base_dn).unwrap_or_default();
                ExistingAccount {
                    staff_id: None,
                    principal: f.upn,
                    account: Account {
                        username: f.username.unwrap_or_default(),
                        given_name: f.given_name,
                        family_name: f.family_name,
                        display_name: f.display_name,
                        email: f.email,
                        department: f.department,
                        groups: Vec::new(),
                        ou: (!same_dn(&container, &self.cfg.users_ou)).then_some(container),
                        expires: f.expires,
                        enabled: f.enabled,
                    },
                    remote_id: Some(f.dn),
                }
            })
            .collect())
    }
}
