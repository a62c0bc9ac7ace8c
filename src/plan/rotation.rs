//! Whose secrets a run issues anew: nobody, everybody listed (`--rotate`),
//! or named persons (`--rotate ID...`, `homebase rotate ID...`).

use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Rotation {
    #[default]
    None,
    All,
    Only(BTreeSet<String>),
}

impl Rotation {
    /// From `--rotate [ID...]`: absent, bare (everybody) or with staff ids.
    pub fn from_flag(flag: Option<&[String]>) -> Rotation {
        match flag {
            None => Rotation::None,
            Some([]) => Rotation::All,
            Some(ids) => Rotation::Only(ids.iter().cloned().collect()),
        }
    }

    pub fn includes(&self, id: &str) -> bool {
        match self {
            Rotation::None => false,
            Rotation::All => true,
            Rotation::Only(ids) => ids.contains(id),
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Rotation::None
    }

    /// Named ids the staff list does not have, for a clear refusal.
    pub fn unknown<'a>(&'a self, listed: &BTreeSet<&str>) -> Vec<&'a str> {
        match self {
            Rotation::Only(ids) => ids
                .iter()
                .map(String::as_str)
                .filter(|id| !listed.contains(id))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_names_nobody_everybody_or_some() {
        assert_eq!(Rotation::from_flag(None), Rotation::None);
        let all = Rotation::from_flag(Some(&[]));
        assert!(all.includes("P1") && all.includes("P2"));
        let some = Rotation::from_flag(Some(&["P1".to_string()]));
        assert!(some.includes("P1") && !some.includes("P2"));
        let listed: BTreeSet<&str> = ["P2"].into();
        assert_eq!(some.unknown(&listed), ["P1"]);
        assert!(all.unknown(&listed).is_empty());
    }
}
