//! "Did you mean …?" for misspelt names.

/// The candidate closest to `wanted` (case-insensitive edit distance), if it is
/// close enough to be a plausible typo: at most a third of the name's length
/// (and at least one edit) apart.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = wanted.to_lowercase();
    let limit = (wanted.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (distance(&wanted, &candidate.to_lowercase()), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, candidate)| candidate)
}

/// Edit distance over characters where swapping two neighbours counts as one
/// edit, as typos go (`bsae` → `base`): optimal string alignment.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for swaps), one back, and the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("office", "office"), 0);
        assert_eq!(distance("ofice", "office"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("bsae", "base"), 1);
        assert_eq!(distance("abc", "ca"), 3);
    }

    #[test]
    fn suggests_only_plausible_typos() {
        let names = ["admin", "base", "field", "office"];
        assert_eq!(closest("ofice", names), Some("office"));
        assert_eq!(closest("Feld", names), Some("field"));
        assert_eq!(closest("ADMIN", names), Some("admin"));
        assert_eq!(closest("manager", names), None);
    }
}
