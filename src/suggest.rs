//! "Did you mean" suggestions for misspelt names.

/// The candidate closest to `given`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn finds_close_names_only() {
        assert_eq!(did_you_mean("imgae", ["image", "name", "count"]), Some("image"));
        assert_eq!(did_you_mean("volume_szie", ["volume_size", "image_size"]), Some("volume_size"));
        assert_eq!(did_you_mean("qqq", ["image", "name"]), None);
    }
}
