//! "Did you mean": the known name a mistyped one most likely meant, for
//! unknown keys in the file and in `CTOWER__…` variables.

/// The name of `names` that `typed` most likely meant: the nearest by edit
/// distance when it is close (at most 2 edits, or a third of the name), or
/// the one name that starts with it.
pub fn closest<'a>(typed: &str, names: &[&'a str]) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    let (best, d) = names
        .iter()
        .map(|n| (*n, edit_distance(&typed, n)))
        .min_by_key(|(_, d)| *d)?;
    if d <= 2.max(typed.chars().count() / 3) {
        return Some(best);
    }
    let mut prefixed = names
        .iter()
        .filter(|n| typed.len() >= 3 && n.starts_with(&typed));
    match (prefixed.next(), prefixed.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Levenshtein distance, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_and_unique_prefixes_are_suggested() {
        let names = ["workers", "window_secs", "batch_size"];
        assert_eq!(closest("workerz", &names), Some("workers"));
        assert_eq!(closest("WINDOW_SEC", &names), Some("window_secs"));
        assert_eq!(closest("batch", &names), Some("batch_size"));
        assert_eq!(closest("colour", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
