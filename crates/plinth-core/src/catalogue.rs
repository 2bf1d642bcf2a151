//! Filters over a catalogue of dotted names (audit actions, event types).

/// The entries of `catalogue` a filter selects: the one named exactly, or with a prefix
/// ending in `.*` (`member.*`) every entry under it. `None` when nothing matches, so an
/// unknown name is told apart from an empty result.
pub fn matching<T: Copy>(catalogue: &[T], name: impl Fn(&T) -> &str, filter: &str) -> Option<Vec<T>> {
    let found: Vec<T> = match filter.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('.') => catalogue
            .iter()
            .filter(|entry| name(entry).starts_with(prefix))
            .copied()
            .collect(),
        Some(_) => Vec::new(),
        None => catalogue
            .iter()
            .filter(|entry| name(entry) == filter)
            .copied()
            .collect(),
    };
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::matching;

    const NAMES: &[&str] = &["member.add", "member.remove", "members.list", "tenant.create"];

    #[test]
    fn a_prefix_ends_with_a_dot_and_a_star() {
        let of = |filter| matching(NAMES, |n| n, filter);
        assert_eq!(of("member.*"), Some(vec!["member.add", "member.remove"]));
        assert_eq!(of("tenant.create"), Some(vec!["tenant.create"]));
        assert_eq!(of("member*"), None, "a prefix must end at a dot");
        assert_eq!(of("member"), None);
        assert_eq!(of("nothing.*"), None);
    }
}
