//! Reading `/proc/<pid>/stat`, for both sides of the boundary.

/// The fields of a `/proc/<pid>/stat` line from the third (the state) on.
/// The second, the command name, is in parentheses and may hold anything
/// (spaces, parentheses): the fields are counted from its last `)`.
pub(crate) fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat.get(stat.rfind(')')? + 1..)?.split_whitespace())
}

#[cfg(test)]
mod tests {
    use super::stat_fields;

    #[test]
    fn fields_are_counted_past_a_name_with_parentheses() {
        let mut fields = stat_fields("42 (a) b (c)) S 17 42 42 0").unwrap();
        assert_eq!(fields.next(), Some("S"));
        assert_eq!(fields.next(), Some("17"));
        assert!(stat_fields("42 (x").is_none());
    }
}
