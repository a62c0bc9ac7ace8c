//! One row of a staff list, after column mapping and validation.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

/// Where a person came from, for error messages and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: String,
    /// 1-based line (CSV: the line the record starts on; XLSX: the row number).
    pub line: usize,
}

/// A staff member as the HR list describes them. Names are data: nothing here
/// is ever interpreted, only escaped for where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: String,
    /// May be empty (people with one name); `family_name` may not.
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub department: Option<String>,
    /// An explicit profile name; else profile `match` rules decide.
    pub profile: Option<String>,
    pub phone: Option<String>,
    pub location: Option<String>,
    pub manager: Option<String>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    /// Columns homebase does not know, by their header as written; they reach templates.
    pub extra: BTreeMap<String, String>,
    #[serde(skip)]
    pub origin: Origin,
}

impl Person {
    /// A person with only the required fields, for tests of the later stages.
    #[cfg(test)]
    pub fn example(id: &str, given_name: &str, family_name: &str) -> Person {
        Person {
            id: id.into(),
            given_name: given_name.into(),
            family_name: family_name.into(),
            email: None,
            department: None,
            profile: None,
            phone: None,
            location: None,
            manager: None,
            start: None,
            end: None,
            extra: BTreeMap::new(),
            origin: Origin {
                file: "staff.csv".into(),
                line: 2,
            },
        }
    }

    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// The known fields a column can map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Id,
    GivenName,
    FamilyName,
    Email,
    Department,
    Profile,
    Phone,
    Location,
    Manager,
    Start,
    End,
}

impl Field {
    pub const ALL: [Field; 11] = [
        Field::Id,
        Field::GivenName,
        Field::FamilyName,
        Field::Email,
        Field::Department,
        Field::Profile,
        Field::Phone,
        Field::Location,
        Field::Manager,
        Field::Start,
        Field::End,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::GivenName => "given_name",
            Field::FamilyName => "family_name",
            Field::Email => "email",
            Field::Department => "department",
            Field::Profile => "profile",
            Field::Phone => "phone",
            Field::Location => "location",
            Field::Manager => "manager",
            Field::Start => "start",
            Field::End => "end",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn required(self) -> bool {
        matches!(self, Field::Id | Field::FamilyName)
    }
}
