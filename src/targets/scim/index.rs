//! The plan's one paged read of all users and groups, kept for the apply
//! that follows: who exists (by `externalId`, `userName`, `id`), who is a
//! member of which managed group, and each group's id. Looking a person up
//! here replaces a request per person (a filter query, or a full scan on a
//! server that cannot filter), and it does not trust a filter the server
//! may have ignored.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::model::{Group, User};

#[derive(Debug, Default)]
pub struct Index {
    /// Users by `externalId`; more than one is a conflict homebase will not pick from.
    by_external: HashMap<String, Vec<String>>,
    /// Users by id: the typed view and the whole resource (for a PUT).
    users: HashMap<String, (User, Value)>,
    /// User ids in the server's order.
    order: Vec<String>,
    /// User id → display names of the managed groups holding it.
    pub member_of: HashMap<String, BTreeSet<String>>,
    /// Group display name → id (every group, so a new one is not made twice).
    pub group_ids: HashMap<String, String>,
}

/// What a look-up in the index found.
pub enum Found<'a> {
    None,
    One(&'a User, &'a Value),
    Many(usize),
}

impl Index {
    pub fn new(users: Vec<(User, Value)>, groups: &[Group], managed: &BTreeSet<String>) -> Index {
        let mut index = Index::default();
        for (user, resource) in users {
            let Some(id) = user.id.clone() else { continue };
            if let Some(ext) = user.external_id.clone().filter(|e| !e.is_empty()) {
                index.by_external.entry(ext).or_default().push(id.clone());
            }
            if index.users.insert(id.clone(), (user, resource)).is_none() {
                index.order.push(id);
            }
        }
        for group in groups {
            let Some(id) = &group.id else { continue };
            index
                .group_ids
                .entry(group.display_name.clone())
                .or_insert_with(|| id.clone());
            if managed.contains(&group.display_name) {
                for member in &group.members {
                    index
                        .member_of
                        .entry(member.value.clone())
                        .or_default()
                        .insert(group.display_name.clone());
                }
            }
        }
        index
    }

    /// Every user, in the order the server listed them.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.order
            .iter()
            .filter_map(|id| self.users.get(id).map(|(u, _)| u))
    }

    pub fn by_external(&self, external_id: &str) -> Found<'_> {
        match self.by_external.get(external_id).map(Vec::as_slice) {
            None | Some([]) => Found::None,
            Some([id]) => self
                .by_id(id)
                .map_or(Found::None, |(u, v)| Found::One(u, v)),
            Some(many) => Found::Many(many.len()),
        }
    }

    pub fn by_id(&self, id: &str) -> Option<(&User, &Value)> {
        self.users.get(id).map(|(u, v)| (u, v))
    }
}
