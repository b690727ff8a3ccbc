//! report/stats: what do the collection's numbers say?
//!
//! Pure functions over what [`super::data`] read: histograms over fixed bins, counts by key
//! (formats, failure reasons), near-duplicate groups (union-find over neighbour pairs at or
//! above a cosine threshold) and outliers (the lowest mean cosine to their nearest
//! neighbours). No I/O; the same input gives the same output, ties broken by id.

use std::collections::BTreeMap;

/// Counts of values in consecutive bins `[edges[i], edges[i + 1])`; the last bin is open above
/// (`[edges[n-1], ∞)`), and values below `edges[0]` or NaN are not counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// `(label, count)` per bin, in order.
    pub bins: Vec<(String, usize)>,
}

impl Histogram {
    /// Count `values` into the bins that `edges` (ascending) start; `label` names a bin from its
    /// bounds (`None` above for the last).
    pub fn new(
        values: impl IntoIterator<Item = f64>,
        edges: &[f64],
        label: impl Fn(f64, Option<f64>) -> String,
    ) -> Self {
        let mut counts = vec![0usize; edges.len()];
        for v in values {
            // The last edge not above v: partition_point counts edges ≤ v.
            let at = edges.partition_point(|&e| e <= v);
            if at > 0 && !v.is_nan() {
                counts[at - 1] += 1;
            }
        }
        let bins = edges
            .iter()
            .enumerate()
            .map(|(i, &low)| (label(low, edges.get(i + 1).copied()), counts[i]))
            .collect();
        Self { bins }
    }

    pub fn total(&self) -> usize {
        self.bins.iter().map(|(_, n)| n).sum()
    }
}

/// How many of each key, most common first (ties by key).
pub fn counts<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut map: BTreeMap<&str, usize> = BTreeMap::new();
    for key in keys {
        *map.entry(key).or_default() += 1;
    }
    let mut out: Vec<(String, usize)> = map.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The kind of a failure reason, for counting: URLs and paths (any word with a `/`) become
/// `<url>` and `<path>`, and numbers `N` (except an HTTP status), so the same failure of
/// different rows counts once; cut to 80 characters.
pub fn reason_kind(reason: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in reason.split_whitespace() {
        let plain = word.trim_matches(|c: char| "`'\"(),;:".contains(c));
        let kept = if plain.contains("://") {
            word.replace(plain, "<url>")
        } else if plain.contains('/') {
            word.replace(plain, "<path>")
        } else if words.last().is_some_and(|w| w == "HTTP") {
            word.to_string()
        } else {
            numbers_as_n(word)
        };
        words.push(kept);
    }
    let out: String = words.join(" ").chars().take(80).collect();
    if out.is_empty() {
        "(no reason given)".into()
    } else {
        out
    }
}

/// Each run of digits in `word` as one `N`.
fn numbers_as_n(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut in_number = false;
    for c in word.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// Groups of items joined by pairs: union-find over `n` items, each `(a, b)` pair merging two.
/// Returns the groups of two or more, each sorted, largest first (ties by first member).
pub fn groups(n: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (a, b) in pairs {
        if a >= n || b >= n {
            continue;
        }
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        by_root.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = by_root.into_values().filter(|g| g.len() > 1).collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a[0].cmp(&b[0])));
    out
}

/// The items least like their neighbours: `(item, mean cosine to its neighbours)` for the
/// `count` lowest means, lowest first (ties by item). Items without neighbours are left out.
pub fn outliers(neighbours: &[Vec<(usize, f32)>], count: usize) -> Vec<(usize, f32)> {
    let mut means: Vec<(usize, f32)> = neighbours
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.is_empty())
        .map(|(i, n)| (i, n.iter().map(|(_, s)| s).sum::<f32>() / n.len() as f32))
        .filter(|(_, m)| m.is_finite())
        .collect();
    means.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    means.truncate(count);
    means
}

/// Bin labels for byte sizes: `10 KB – 50 KB`, `≥ 10 MB`.
pub fn bytes_label(low: f64, high: Option<f64>) -> String {
    match high {
        Some(high) => format!("{} – {}", human_bytes(low), human_bytes(high)),
        None => format!("≥ {}", human_bytes(low)),
    }
}

/// A byte count in KB / MB (powers of 1000), as people read file sizes.
pub fn human_bytes(bytes: f64) -> String {
    if bytes >= 1e6 {
        format!("{} MB", trim(bytes / 1e6))
    } else if bytes >= 1e3 {
        format!("{} KB", trim(bytes / 1e3))
    } else {
        format!("{} B", trim(bytes))
    }
}

/// Bin labels for plain numbers: `0.5 – 1`, `≥ 16`.
pub fn number_label(low: f64, high: Option<f64>) -> String {
    match high {
        Some(high) => format!("{} – {}", trim(low), trim(high)),
        None => format!("≥ {}", trim(low)),
    }
}

/// A number with at most two decimals and no trailing zeros.
fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_are_half_open_and_the_last_is_open_above() {
        let h = Histogram::new(
            [0.0, 0.5, 1.0, 1.5, 2.0, 99.0, -1.0, f64::NAN],
            &[0.0, 1.0, 2.0],
            number_label,
        );
        assert_eq!(
            h.bins,
            [
                ("0 – 1".to_string(), 2),
                ("1 – 2".to_string(), 2),
                ("≥ 2".to_string(), 2)
            ]
        );
        // below the first edge and NaN are not counted
        assert_eq!(h.total(), 6);
        let empty = Histogram::new([], &[0.0, 1.0], number_label);
        assert_eq!(empty.total(), 0);
        assert_eq!(empty.bins.len(), 2);
    }

    #[test]
    fn counts_are_most_common_first() {
        assert_eq!(
            counts(["png", "jpg", "png", "gif", "jpg", "png"]),
            [("png".into(), 3), ("jpg".into(), 2), ("gif".into(), 1)]
        );
        assert!(counts([]).is_empty());
    }

    #[test]
    fn reasons_group_with_urls_paths_and_numbers_merged() {
        assert_eq!(
            reason_kind("HTTP 404 from http://a.test:8080/x.jpg"),
            "HTTP 404 from <url>"
        );
        assert_ne!(
            reason_kind("HTTP 404 from x"),
            reason_kind("HTTP 503 from x")
        );
        assert_eq!(
            reason_kind("not an image: unknown format (12 bytes)"),
            reason_kind("not an image: unknown format (7 bytes)")
        );
        assert_eq!(
            reason_kind("file not found: /data/a.png"),
            "file not found: <path>"
        );
        assert_eq!(
            reason_kind("file not found: data/images/b.png"),
            "file not found: <path>"
        );
        assert_eq!(
            reason_kind("/srv/x.png: Permission denied (os error 13)"),
            "<path>: Permission denied (os error N)"
        );
        assert_eq!(
            reason_kind("fetching `https://x.test/a`: timeout"),
            "fetching `<url>`: timeout"
        );
        assert_eq!(reason_kind("  "), "(no reason given)");
        assert_eq!(reason_kind(&"x".repeat(500)).chars().count(), 80);
    }

    #[test]
    fn union_find_groups_chains_and_ignores_singletons() {
        // 0-1, 1-2 chain into one group; 4-5 another; 3 and 6 alone; out-of-range pairs ignored
        let g = groups(7, [(1, 0), (2, 1), (5, 4), (4, 5), (9, 1), (3, 3)]);
        assert_eq!(g, [vec![0, 1, 2], vec![4, 5]]);
        assert!(groups(0, []).is_empty());
        assert!(groups(3, []).is_empty());
    }

    #[test]
    fn outliers_have_the_lowest_mean_similarity() {
        let neighbours = vec![
            vec![(1, 0.9), (2, 0.8)], // 0.85
            vec![(0, 0.9)],           // 0.9
            vec![(0, 0.2), (1, 0.4)], // 0.3
            vec![],                   // no neighbours: left out
            vec![(0, 0.3), (2, 0.3)], // 0.3: ties by item
        ];
        let found = outliers(&neighbours, 3);
        let ids: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, [2, 4, 0]);
        assert!((found[0].1 - 0.3).abs() < 1e-6);
    }

    #[test]
    fn labels_read_as_people_write_sizes() {
        assert_eq!(bytes_label(10e3, Some(50e3)), "10 KB – 50 KB");
        assert_eq!(bytes_label(1.5e6, None), "≥ 1.5 MB");
        assert_eq!(bytes_label(0.0, Some(1e3)), "0 B – 1 KB");
        assert_eq!(number_label(0.25, Some(0.5)), "0.25 – 0.5");
    }
}
