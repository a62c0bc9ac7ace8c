//! `homebase adopt` on Snipe-IT: the assets of the configured kinds that are
//! checked out to a user, with the user's employee number (the staff id) as
//! the holder — as the read of a plan sees them. (Users themselves need no
//! adopting: `apply` finds a person's user by employee number, then by
//! username, before it would make one.)

use anyhow::Result;

use super::Snipeit;
use crate::plan::Observed;
use crate::targets::ExistingAssignment;

impl Snipeit {
    /// The checked-out assets whose user carries an employee number.
    pub async fn existing_assignments(&self) -> Result<Vec<ExistingAssignment>> {
        let mut observed = Observed::default();
        self.read(&mut observed).await?;
        let source = format!("Snipe-IT {}", self.config.url);
        Ok(observed
            .stock
            .remove(&self.name)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                Some(ExistingAssignment {
                    asset_tag: item.asset_tag,
                    holder: item.assigned_to?,
                    file: source.clone(),
                    line: 0,
                })
            })
            .collect())
    }
}
