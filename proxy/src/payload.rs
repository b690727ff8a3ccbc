//! payload: what is stored with each image vector, and which of it may a client see or filter?
//!
//! [`ImagePayload`] is the one definition of a point's payload: ingest writes it, search, images
//! and eval read it. It holds the row as the user wrote it in `images.tsv` (`id`, `url`,
//! `caption`, and the other columns in their own map, [`ImagePayload::columns`]) and the fields
//! ingest computes (`file`, `content_hash`, `row_hash`, `width`, `height`, `image_bytes`,
//! `image_format`).
//!
//! Stored flat: Qdrant filters and indexes by top-level field name, so the user's columns sit
//! beside ingest's fields, and the TSV parser refuses a column named like one of
//! [`INGEST_FIELDS`]. Clients see the user's columns, the URL and the size, never the local path
//! or the hashes; filters may name only the user's columns ([`check_filter_fields`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::store::{Payload, PayloadFilter, StoreError};

/// The columns of `images.tsv` that ingest reads itself (the rest are [`ImagePayload::columns`]).
pub const TSV_FIELDS: [&str; 3] = ["id", "url", "caption"];

/// Fields ingest computes: no TSV column may use these names, and no filter may name them.
pub const INGEST_FIELDS: [&str; 7] = [
    "file",
    "content_hash",
    "row_hash",
    "width",
    "height",
    "image_bytes",
    "image_format",
];

/// Fields with a keyword index from the start: the row id (labels, similar-by-id) and the
/// content hash (ingest's look-ups). The user's columns are indexed by ingest as it meets them.
pub const INDEXED_FIELDS: [&str; 2] = ["id", "content_hash"];

/// The payload of one image's point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImagePayload {
    /// The row id in `images.tsv`: the id people and the API know the image by.
    #[serde(default)]
    pub id: String,
    /// The `url` column as written (an http(s) URL or a path relative to the TSV).
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// The original on this machine (absolute), for images ingested from files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// sha256 of the image bytes (hex): the thumbnail's ETag, and ingest's "unchanged" check.
    #[serde(default)]
    pub content_hash: String,
    /// sha256 of the row's other cells: a change rewrites the payload only.
    #[serde(default)]
    pub row_hash: String,
    /// The original size, upright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The original's size in bytes, as fetched (`None`: ingested before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_bytes: Option<u64>,
    /// The original's format as its bytes say (`jpg`, `png`, `gif`, `webp`, `bmp`, `tif`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_format: Option<String>,
    /// The TSV's other columns, by header name (empty cells left out).
    #[serde(flatten)]
    pub columns: Map<String, Value>,
}

impl ImagePayload {
    /// The stored form.
    pub fn to_payload(&self) -> Payload {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of strings, numbers and a map always serialises to an object.
            _ => unreachable!("ImagePayload serialises to a JSON object"),
        }
    }

    /// Read a stored payload; missing fields are empty. A point that ingest did not write
    /// (fields of other types) keeps its fields as columns. Either way a point without a row id
    /// is known by its point id ([`external_id`]).
    pub fn read(point: Uuid, payload: Payload) -> Self {
        let id = external_id(point, &payload);
        let parsed = serde_json::from_value::<Self>(Value::Object(payload.clone()));
        let mut p = parsed.unwrap_or_else(|_| Self {
            columns: payload,
            ..Self::default()
        });
        p.id = id;
        p
    }

    /// What a client sees besides id, caption and score: the URL as written, the size, and the
    /// user's columns. Never the local path or the hashes.
    pub fn public_fields(&self) -> Map<String, Value> {
        let mut out = self.columns.clone();
        if !self.url.is_empty() {
            out.insert("url".into(), Value::String(self.url.clone()));
        }
        if let (Some(w), Some(h)) = (self.width, self.height) {
            out.insert("width".into(), Value::from(w));
            out.insert("height".into(), Value::from(h));
        }
        out
    }
}

/// The row id of a stored point (the one rule for "which id does a client see").
pub fn external_id(point: Uuid, payload: &Payload) -> String {
    match payload.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => point.to_string(),
    }
}

/// Filters may name only the user's TSV columns: `id`, `url`, `caption` and the others, never a
/// field ingest computes.
pub fn check_filter_fields(filter: &PayloadFilter) -> Result<(), StoreError> {
    match filter.keys().find(|k| INGEST_FIELDS.contains(&k.as_str())) {
        None => Ok(()),
        Some(field) => Err(StoreError::Invalid(format!(
            "filter field `{field}` is not a column of images.tsv; filters may name `id`, `url`, \
             `caption` or any other column of the TSV (not {})",
            INGEST_FIELDS.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ImagePayload {
        let mut columns = Map::new();
        columns.insert("license".into(), json!("cc-by"));
        ImagePayload {
            id: "img1".into(),
            url: "photos/a.jpg".into(),
            caption: Some("a cat".into()),
            file: Some("/data/photos/a.jpg".into()),
            content_hash: "c0".into(),
            row_hash: "r0".into(),
            width: Some(640),
            height: Some(480),
            image_bytes: Some(51_234),
            image_format: Some("jpg".into()),
            columns,
        }
    }

    #[test]
    fn stored_flat_and_read_back() {
        let p = sample();
        let stored = p.to_payload();
        assert_eq!(
            Value::Object(stored.clone()),
            json!({"id": "img1", "url": "photos/a.jpg", "caption": "a cat",
                   "file": "/data/photos/a.jpg", "content_hash": "c0", "row_hash": "r0",
                   "width": 640, "height": 480, "image_bytes": 51_234, "image_format": "jpg",
                   "license": "cc-by"})
        );
        assert_eq!(ImagePayload::read(Uuid::nil(), stored), p);
    }

    #[test]
    fn a_payload_written_before_sizes_were_recorded_reads() {
        let mut old = sample().to_payload();
        old.remove("image_bytes");
        old.remove("image_format");
        let p = ImagePayload::read(Uuid::nil(), old);
        assert_eq!((p.image_bytes, p.image_format), (None, None));
        assert_eq!((p.id.as_str(), p.width), ("img1", Some(640)));
        assert!(p.columns.contains_key("license") && p.columns.len() == 1);
    }

    #[test]
    fn clients_never_see_the_path_or_hashes() {
        let public = sample().public_fields();
        assert_eq!(
            Value::Object(public),
            json!({"url": "photos/a.jpg", "width": 640, "height": 480, "license": "cc-by"})
        );
    }

    #[test]
    fn a_foreign_point_is_known_by_its_point_id() {
        let point = Uuid::from_u128(7);
        let mut raw = Map::new();
        raw.insert("width".into(), json!("wide"));
        let p = ImagePayload::read(point, raw.clone());
        assert_eq!(p.id, point.to_string());
        assert_eq!(p.columns, raw);
        assert_eq!(external_id(point, &raw), point.to_string());
        raw.insert("id".into(), json!("row-9"));
        assert_eq!(external_id(point, &raw), "row-9");
        assert_eq!(ImagePayload::read(point, raw).id, "row-9");
        // Missing fields are empty, not a foreign point.
        let minimal = Map::from_iter([("id".to_string(), json!("only"))]);
        let p = ImagePayload::read(point, minimal);
        assert_eq!((p.id.as_str(), p.url.as_str()), ("only", ""));
        assert!(p.columns.is_empty());
    }

    #[test]
    fn filters_name_only_tsv_columns() {
        let check = |field: &str| {
            let filter = PayloadFilter::from([(field.to_string(), json!("x"))]);
            check_filter_fields(&filter).map_err(|e| e.to_string())
        };
        for ok in ["id", "url", "caption", "license"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for internal in INGEST_FIELDS {
            let err = check(internal).unwrap_err();
            assert!(err.contains(&format!("`{internal}`")), "{err}");
            assert!(err.contains("`id`, `url`, `caption`"), "{err}");
        }
    }
}
