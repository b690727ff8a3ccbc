//! review/queue: which (query, image) pairs need a reviewer, and in what order?
//!
//! Pure: from the votes in force and the verdicts in force, the pairs that someone flagged or on
//! which the votes disagree (at least one `relevant` and at least one `irrelevant` or `flag`),
//! that no reviewer has settled yet (a `skip` settles it too). Each item carries its vote counts
//! and the voters' notes. Most flags first, then the closest split (the smaller side's size),
//! then the most votes, then by query and image, so pages are stable while nothing changes.

use std::collections::{BTreeMap, HashMap};

use crate::labels::{Label, Verdict};

use super::{Decision, Review, decisions};

/// Votes in force on one (query, image), by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub relevant: usize,
    pub irrelevant: usize,
    pub flag: usize,
}

impl Counts {
    fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Relevant => self.relevant += 1,
            Verdict::Irrelevant => self.irrelevant += 1,
            Verdict::Flag => self.flag += 1,
            Verdict::None => {}
        }
    }

    /// Votes against (a flag counts as irrelevant, as in eval's majority).
    fn against(&self) -> usize {
        self.irrelevant + self.flag
    }

    /// Someone flagged it, or the votes go both ways.
    pub fn needs_review(&self) -> bool {
        self.flag > 0 || (self.relevant > 0 && self.against() > 0)
    }

    /// How split the votes are: the smaller side.
    fn split(&self) -> usize {
        self.relevant.min(self.against())
    }
}

/// One (query, image) waiting for a reviewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub query: String,
    pub image_id: String,
    pub counts: Counts,
    /// The voters' notes, oldest first.
    pub notes: Vec<String>,
}

/// One page of the queue, and how many items it has in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Item>,
    pub total: usize,
}

/// Every pair waiting for a reviewer, in review order. `labels` oldest first (as the label log
/// gives them), so notes come in the order they were written.
pub fn queue(labels: &[Label], reviews: &[Review]) -> Vec<Item> {
    let settled: HashMap<(String, String), Decision> = decisions(reviews);
    let mut pairs: BTreeMap<(String, String), Item> = BTreeMap::new();
    for label in labels {
        let key = (label.query.clone(), label.image_id.clone());
        if settled.contains_key(&key) {
            continue;
        }
        let item = pairs.entry(key).or_insert_with(|| Item {
            query: label.query.clone(),
            image_id: label.image_id.clone(),
            counts: Counts::default(),
            notes: Vec::new(),
        });
        item.counts.add(label.label);
        if let Some(note) = label.note.as_ref().filter(|n| !n.is_empty()) {
            item.notes.push(note.clone());
        }
    }
    let mut items: Vec<Item> = pairs
        .into_values()
        .filter(|i| i.counts.needs_review())
        .collect();
    // Stable sort over the map's (query, image) order: ties stay in that order.
    items.sort_by_key(|i| {
        let c = i.counts;
        std::cmp::Reverse((c.flag, c.split(), c.relevant + c.against()))
    });
    items
}

/// Items `offset..offset + limit` of `items`.
pub fn page(items: Vec<Item>, offset: usize, limit: usize) -> Page {
    let total = items.len();
    let items = items.into_iter().skip(offset).take(limit).collect();
    Page { items, total }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::label_id;

    fn vote(client: &str, query: &str, image: &str, verdict: Verdict, note: &str) -> Label {
        Label {
            label_id: label_id(client, query, image),
            query: query.into(),
            query_vector: None,
            image_id: image.into(),
            label: verdict,
            note: (!note.is_empty()).then(|| note.into()),
            client_id: client.into(),
            time_ms: 0,
        }
    }

    fn review(query: &str, image: &str, verdict: Decision) -> Review {
        Review::new(query.into(), image.into(), verdict, None)
    }

    fn keys(items: &[Item]) -> Vec<(&str, &str)> {
        items
            .iter()
            .map(|i| (i.query.as_str(), i.image_id.as_str()))
            .collect()
    }

    #[test]
    fn flagged_and_disputed_pairs_most_flags_first() {
        use Verdict::*;
        let labels = [
            // Unanimous: not in the queue.
            vote("a", "cat", "tabby", Relevant, ""),
            vote("b", "cat", "tabby", Relevant, ""),
            vote("a", "cat", "car", Irrelevant, ""),
            // Disputed 2 to 1.
            vote("a", "cat", "lion", Relevant, ""),
            vote("b", "cat", "lion", Relevant, ""),
            vote("c", "cat", "lion", Irrelevant, "a lion is no cat"),
            // Disputed 2 to 2: a closer split goes first.
            vote("a", "dog", "wolf", Relevant, ""),
            vote("b", "dog", "wolf", Relevant, ""),
            vote("c", "dog", "wolf", Irrelevant, ""),
            vote("d", "dog", "wolf", Irrelevant, ""),
            // One flag, and two flags: flags first.
            vote("a", "dog", "rude", Flag, "offensive"),
            vote("b", "dog", "rude", Flag, ""),
            vote("c", "dog", "rude", Relevant, ""),
            vote("a", "cat", "broken", Flag, "broken image"),
        ];
        let items = queue(&labels, &[]);
        assert_eq!(
            keys(&items),
            [
                ("dog", "rude"),
                ("cat", "broken"),
                ("dog", "wolf"),
                ("cat", "lion")
            ]
        );
        let rude = &items[0];
        assert_eq!(
            rude.counts,
            Counts {
                relevant: 1,
                irrelevant: 0,
                flag: 2
            }
        );
        assert_eq!(rude.notes, ["offensive"]);
        assert_eq!(items[3].notes, ["a lion is no cat"]);
    }

    #[test]
    fn reviewed_pairs_leave_the_queue_skip_included() {
        let labels = [
            vote("a", "cat", "x", Verdict::Flag, ""),
            vote("a", "cat", "y", Verdict::Flag, ""),
            vote("a", "cat", "z", Verdict::Flag, ""),
        ];
        let reviews = [
            review("cat", "x", Decision::Relevant),
            review("cat", "y", Decision::Skip),
            // Another query's verdict on the same image does not settle this one.
            review("dog", "z", Decision::Irrelevant),
        ];
        assert_eq!(keys(&queue(&labels, &reviews)), [("cat", "z")]);
    }

    #[test]
    fn pages_slice_the_queue_and_count_it_whole() {
        let labels: Vec<Label> = (0..5)
            .map(|i| vote("a", "q", &format!("img{i}"), Verdict::Flag, ""))
            .collect();
        let page = page(queue(&labels, &[]), 3, 10);
        assert_eq!(page.total, 5);
        assert_eq!(keys(&page.items), [("q", "img3"), ("q", "img4")]);
        assert!(super::page(Vec::new(), 20, 10).items.is_empty());
    }
}
