//! Every wire type against the exact JSON the proxy writes and reads today (field names and
//! order, `null` versus an omitted field), both ways: serialising gives the string, and the
//! string parses back to the value.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use wire::worker::{FromWorker, ToWorker, VariantInfo};
use wire::{
    ErrorBody, Example, FeedbackRequest, FeedbackResponse, FileRef, Health, Hit, ModelManifest,
    Readiness, Results, RowFormat, SearchRequest, SimilarRequest, Strategy, Term, TokenRows,
    Variant, Vectors, Verdict,
};

/// `value` serialises to `golden`, and `golden` parses to `value`.
fn golden<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, golden: &str) {
    assert_eq!(serde_json::to_string(value).unwrap(), golden);
    assert_eq!(&serde_json::from_str::<T>(golden).unwrap(), value);
}

fn refused<T: DeserializeOwned + Debug>(json: &str, says: &str) {
    let e = serde_json::from_str::<T>(json).unwrap_err().to_string();
    assert!(e.contains(says), "{json}: {e}");
}

#[test]
fn search_request() {
    golden(
        &SearchRequest {
            vector: Some(vec![0.5, -0.25]),
            limit: Some(20),
            offset: Some(0),
            ..SearchRequest::default()
        },
        r#"{"vector":[0.5,-0.25],"limit":20,"offset":0}"#,
    );
    golden(
        &SearchRequest {
            text: Some("red car".into()),
            filter: BTreeMap::from([
                ("camera".to_string(), json!("x100")),
                ("year".to_string(), json!(2024)),
            ]),
            ..SearchRequest::default()
        },
        r#"{"text":"red car","filter":{"camera":"x100","year":2024}}"#,
    );
    // What the proxy accepts besides: `null` for an absent field; nothing unknown.
    let nulls: SearchRequest =
        serde_json::from_str(r#"{"text":"t","vector":null,"limit":null}"#).unwrap();
    assert_eq!(nulls.text.as_deref(), Some("t"));
    assert_eq!((nulls.vector, nulls.limit), (None, None));
    refused::<SearchRequest>(r#"{"text":"t","k":3}"#, "unknown field `k`");
    refused::<SearchRequest>(r#"{"text":"t","filter":null}"#, "invalid type: null");
}

#[test]
fn composed_and_feedback_queries() {
    golden(
        &SearchRequest {
            terms: vec![
                Term {
                    weight: 2.0,
                    example: Example::Vector(vec![0.5]),
                },
                Term {
                    weight: -1.0,
                    example: Example::Id("night".into()),
                },
            ],
            ..SearchRequest::default()
        },
        r#"{"terms":[{"weight":2.0,"vector":[0.5]},{"weight":-1.0,"id":"night"}]}"#,
    );
    golden(
        &SearchRequest {
            vector: Some(vec![0.5]),
            positive: vec![Example::Id("cat".into()), Example::Vector(vec![1.0])],
            negative: vec![Example::Id("dog".into())],
            strategy: Some(Strategy::BestScore),
            ..SearchRequest::default()
        },
        concat!(
            r#"{"vector":[0.5],"positive":[{"id":"cat"},{"vector":[1.0]}],"#,
            r#""negative":[{"id":"dog"}],"strategy":"best_score"}"#
        ),
    );
    refused::<SearchRequest>(r#"{"positive":[{"id":"a","vector":[1]}]}"#, "");
    refused::<SearchRequest>(r#"{"positive":[{"image":"a"}]}"#, "unknown variant `image`");
    refused::<SearchRequest>(r#"{"terms":[{"weight":1}]}"#, "");
    refused::<SearchRequest>(r#"{"terms":[{"id":"a"}]}"#, "missing field `weight`");
    refused::<SearchRequest>(
        r#"{"vector":[1],"strategy":"max"}"#,
        "unknown variant `max`",
    );
}

#[test]
fn similar_request() {
    golden(
        &SimilarRequest {
            id: "cat".into(),
            limit: Some(20),
            offset: Some(40),
            ..SimilarRequest::default()
        },
        r#"{"id":"cat","limit":20,"offset":40}"#,
    );
    golden(
        &SimilarRequest {
            id: "cat".into(),
            filter: BTreeMap::from([("indoor".to_string(), json!(true))]),
            ..SimilarRequest::default()
        },
        r#"{"id":"cat","filter":{"indoor":true}}"#,
    );
    refused::<SimilarRequest>(r#"{"limit":1}"#, "missing field `id`");
    refused::<SimilarRequest>(r#"{"id":"a","vector":[1]}"#, "unknown field `vector`");
}

fn hit(caption: Option<&str>) -> Hit {
    let payload = json!({"camera": "x100", "url": "photos/cat.jpg"});
    Hit {
        id: "cat".into(),
        score: 0.5,
        url: "/images/cat".into(),
        thumbnail_url: "/thumbs/cat".into(),
        caption: caption.map(str::to_string),
        payload: payload.as_object().cloned().unwrap(),
        weak: caption.is_none(),
    }
}

#[test]
fn results_page() {
    golden(
        &Results {
            results: vec![hit(Some("a cat")), hit(None)],
            took_ms: 12.5,
            limit: 2,
            offset: 0,
            next_offset: Some(2),
            cutoff: Some(0.25),
            vectors: Vectors::Image,
        },
        concat!(
            r#"{"results":["#,
            r#"{"id":"cat","score":0.5,"url":"/images/cat","thumbnail_url":"/thumbs/cat","caption":"a cat","payload":{"camera":"x100","url":"photos/cat.jpg"},"weak":false},"#,
            r#"{"id":"cat","score":0.5,"url":"/images/cat","thumbnail_url":"/thumbs/cat","caption":null,"payload":{"camera":"x100","url":"photos/cat.jpg"},"weak":true}"#,
            r#"],"took_ms":12.5,"limit":2,"offset":0,"next_offset":2,"cutoff":0.25,"vectors":"image"}"#
        ),
    );
    golden(
        &Results {
            results: vec![],
            took_ms: 0.25,
            limit: 20,
            offset: 40,
            next_offset: None,
            cutoff: None,
            vectors: Vectors::Fused,
        },
        r#"{"results":[],"took_ms":0.25,"limit":20,"offset":40,"next_offset":null,"cutoff":null,"vectors":"fused"}"#,
    );
}

#[test]
fn feedback() {
    golden(
        &FeedbackRequest {
            query: "red car".into(),
            query_vector: Some(vec![0.5]),
            image_id: "cat".into(),
            label: Verdict::None,
            note: None,
            client_id: Some("c".into()),
        },
        r#"{"query":"red car","query_vector":[0.5],"image_id":"cat","label":"none","client_id":"c"}"#,
    );
    golden(
        &FeedbackRequest {
            query: "red car".into(),
            query_vector: None,
            image_id: "cat".into(),
            label: Verdict::Flag,
            note: Some("broken".into()),
            client_id: None,
        },
        r#"{"query":"red car","image_id":"cat","label":"flag","note":"broken"}"#,
    );
    // A server reads the label as a string and answers an unknown one itself.
    let any: FeedbackRequest<String> =
        serde_json::from_str(r#"{"query":"q","image_id":"i","label":"maybe"}"#).unwrap();
    assert_eq!(any.label, "maybe");
    assert_eq!(
        any.label.parse::<Verdict>().unwrap_err().to_string(),
        "label `maybe` is not one of relevant, irrelevant, flag (or none, to withdraw)"
    );
    refused::<FeedbackRequest>(
        r#"{"query":"q","image_id":"i","label":"maybe"}"#,
        "unknown variant `maybe`",
    );
    refused::<FeedbackRequest<String>>(
        r#"{"query":"q","image_id":"i","label":"flag","score":1}"#,
        "unknown field `score`",
    );
    golden(
        &FeedbackResponse {
            ok: true,
            label_id: "0b6f7c1e-93a4-4d2b-8c55-2e9d1a7f4c60".into(),
            label: Verdict::Relevant,
        },
        r#"{"ok":true,"label_id":"0b6f7c1e-93a4-4d2b-8c55-2e9d1a7f4c60","label":"relevant"}"#,
    );
}

#[test]
fn verdict_names() {
    for (v, name) in Verdict::ALL
        .into_iter()
        .zip(["relevant", "irrelevant", "flag", "none"])
    {
        assert_eq!(v.as_str(), name);
        assert_eq!(name.parse::<Verdict>(), Ok(v));
        golden(&v, &format!("\"{name}\""));
    }
}

#[test]
fn error_body() {
    golden(
        &ErrorBody::new("busy", "the server is busy"),
        r#"{"error":{"code":"busy","message":"the server is busy"}}"#,
    );
}

#[test]
fn health_and_readiness() {
    golden(&Health::ok(), r#"{"status":"ok"}"#);
    golden(
        &Readiness {
            ready: true,
            points: 24,
            model: "openai/clip-vit-base-patch32".into(),
            dim: 512,
            collection: "images".into(),
            labels: 3,
        },
        r#"{"ready":true,"points":24,"model":"openai/clip-vit-base-patch32","dim":512,"collection":"images","labels":3}"#,
    );
}

fn file(name: &str, sha: &str, bytes: u64) -> FileRef {
    FileRef {
        url: format!("/model/{name}?sha256={sha}"),
        sha256: sha.into(),
        bytes,
    }
}

#[test]
fn model_manifest() {
    // Built in the order a client would: the map still lists the variants by name.
    let manifest = ModelManifest {
        model_id: "tiny-clip".into(),
        dim: 16,
        context_length: 77,
        config: file("config.json", "c0", 10),
        tokenizer: file("tokenizer.json", "70", 20),
        variants: BTreeMap::from([
            (Variant::Q8, file("text-q8.gguf", "a8", 30)),
            (Variant::F32, file("text-f32.safetensors", "a32", 40)),
            (Variant::F16, file("text-f16.safetensors", "a16", 50)),
        ]),
        default_variant: Some(Variant::Q8),
        token_rows: Some(TokenRows {
            file: file("token-rows.bin", "b0", 544 * 3),
            rows: 3,
            row_bytes: 544,
            format: RowFormat::Q8_0,
        }),
    };
    golden(
        &manifest,
        concat!(
            r#"{"model_id":"tiny-clip","dim":16,"context_length":77,"#,
            r#""config":{"url":"/model/config.json?sha256=c0","sha256":"c0","bytes":10},"#,
            r#""tokenizer":{"url":"/model/tokenizer.json?sha256=70","sha256":"70","bytes":20},"#,
            r#""variants":{"#,
            r#""f16":{"url":"/model/text-f16.safetensors?sha256=a16","sha256":"a16","bytes":50},"#,
            r#""f32":{"url":"/model/text-f32.safetensors?sha256=a32","sha256":"a32","bytes":40},"#,
            r#""q8":{"url":"/model/text-q8.gguf?sha256=a8","sha256":"a8","bytes":30}},"#,
            r#""default_variant":"q8","#,
            r#""token_rows":{"file":{"url":"/model/token-rows.bin?sha256=b0","sha256":"b0","bytes":1632},"#,
            r#""rows":3,"row_bytes":544,"format":"q8_0"}}"#
        ),
    );
    let empty = ModelManifest {
        variants: BTreeMap::new(),
        default_variant: None,
        token_rows: None,
        ..manifest
    };
    let json = serde_json::to_string(&empty).unwrap();
    assert!(
        json.ends_with(r#""variants":{},"default_variant":null,"token_rows":null}"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<ModelManifest>(&json).unwrap(), empty);
}

#[test]
fn worker_messages() {
    golden(
        &ToWorker::Load {
            api_base: String::new(),
            variant: Some(Variant::F16),
        },
        r#"{"type":"load","api_base":"","variant":"f16"}"#,
    );
    golden(
        &ToWorker::Load {
            api_base: "https://x.org".into(),
            variant: None,
        },
        r#"{"type":"load","api_base":"https://x.org","variant":null}"#,
    );
    golden(
        &FromWorker::Manifest {
            model_id: "m".into(),
            variants: vec![VariantInfo {
                name: Variant::Q8,
                bytes: 3,
            }],
            variant: Variant::Q8,
        },
        r#"{"type":"manifest","model_id":"m","variants":[{"name":"q8","bytes":3}],"variant":"q8"}"#,
    );
    golden(
        &FromWorker::Ready {
            model_id: "m".into(),
            variant: Variant::F32,
            dim: 16,
            downloaded: 1,
            cached: 2,
            millis: 3.5,
        },
        r#"{"type":"ready","model_id":"m","variant":"f32","dim":16,"downloaded":1,"cached":2,"millis":3.5}"#,
    );
    golden(&FromWorker::Started, r#"{"type":"started"}"#);
    golden(
        &FromWorker::EmbedFailed {
            id: 4,
            message: "no".into(),
        },
        r#"{"type":"embed_failed","id":4,"message":"no"}"#,
    );
}

#[test]
fn review_queue_and_verdicts() {
    use wire::{ReviewItem, ReviewQueue, ReviewRequest, ReviewResponse, ReviewVerdict, VoteCounts};
    golden(
        &ReviewQueue {
            items: vec![ReviewItem {
                query: "cat".into(),
                image_id: "tabby".into(),
                url: "/images/tabby".into(),
                thumbnail_url: "/thumbs/tabby".into(),
                caption: None,
                votes: VoteCounts {
                    relevant: 1,
                    irrelevant: 0,
                    flag: 2,
                },
                notes: vec!["not a cat".into()],
            }],
            total: 3,
            offset: 0,
            limit: 1,
            next_offset: Some(1),
        },
        r#"{"items":[{"query":"cat","image_id":"tabby","url":"/images/tabby","thumbnail_url":"/thumbs/tabby","caption":null,"votes":{"relevant":1,"irrelevant":0,"flag":2},"notes":["not a cat"]}],"total":3,"offset":0,"limit":1,"next_offset":1}"#,
    );
    golden(
        &ReviewRequest {
            query: "cat".into(),
            image_id: "tabby".into(),
            verdict: ReviewVerdict::Skip,
            note: None,
        },
        r#"{"query":"cat","image_id":"tabby","verdict":"skip"}"#,
    );
    golden(
        &ReviewRequest {
            query: "cat".into(),
            image_id: "tabby".into(),
            verdict: "maybe".to_string(),
            note: Some("checked".into()),
        },
        r#"{"query":"cat","image_id":"tabby","verdict":"maybe","note":"checked"}"#,
    );
    golden(
        &ReviewResponse {
            ok: true,
            query: "cat".into(),
            image_id: "tabby".into(),
            verdict: ReviewVerdict::Irrelevant,
        },
        r#"{"ok":true,"query":"cat","image_id":"tabby","verdict":"irrelevant"}"#,
    );
    refused::<ReviewRequest>(
        r#"{"query":"cat","image_id":"tabby","verdict":"maybe"}"#,
        "unknown variant `maybe`",
    );
    refused::<ReviewRequest>(
        r#"{"query":"cat","image_id":"tabby","verdict":"skip","label":"x"}"#,
        "unknown field `label`",
    );
    for verdict in ReviewVerdict::ALL {
        assert_eq!(verdict.as_str().parse::<ReviewVerdict>(), Ok(verdict));
    }
    let unknown = "flag".parse::<ReviewVerdict>().unwrap_err().to_string();
    assert!(unknown.contains("relevant, irrelevant, skip"), "{unknown}");
}

#[test]
fn cutoff_state() {
    golden(
        &wire::CutoffState::Off(wire::CutoffOff {
            labels: 12,
            queries: 3,
            needed: 30,
            reason: "needs 18 more judged results".into(),
        }),
        r#"{"state":"off","labels":12,"queries":3,"needed":30,"reason":"needs 18 more judged results"}"#,
    );
    let flat = wire::RuleScore {
        rule: wire::CutoffRule::Flat,
        value: 0.25,
        precision: 0.5,
        recall: 1.0,
        f1: 0.75,
    };
    let below_top = wire::RuleScore {
        rule: wire::CutoffRule::BelowTop,
        value: 0.125,
        ..flat.clone()
    };
    golden(
        &wire::CutoffState::On(wire::CutoffOn {
            rule: wire::CutoffRule::BelowTop,
            value: 0.125,
            precision: 0.5,
            recall: 1.0,
            f1: 0.75,
            labels: 40,
            queries: 6,
            compared: vec![flat, below_top],
        }),
        concat!(
            r#"{"state":"on","rule":"below_top","value":0.125,"precision":0.5,"recall":1.0,"#,
            r#""f1":0.75,"labels":40,"queries":6,"compared":["#,
            r#"{"rule":"flat","value":0.25,"precision":0.5,"recall":1.0,"f1":0.75},"#,
            r#"{"rule":"below_top","value":0.125,"precision":0.5,"recall":1.0,"f1":0.75}]}"#
        ),
    );
    refused::<wire::CutoffState>(r#"{"state":"maybe"}"#, "unknown variant");
}

#[test]
fn unready() {
    use wire::{ErrorDetail, PartState, Unready};
    golden(
        &Unready {
            ready: false,
            store: PartState::Unavailable,
            labels: PartState::Ok,
            error: ErrorDetail {
                code: "store_unavailable".into(),
                message: "the vector store is unavailable; try again shortly".into(),
            },
        },
        r#"{"ready":false,"store":"unavailable","labels":"ok","error":{"code":"store_unavailable","message":"the vector store is unavailable; try again shortly"}}"#,
    );
    for (state, name) in [
        (PartState::NotIngested, "not_ingested"),
        (PartState::ModelMismatch, "model_mismatch"),
        (PartState::Failed, "failed"),
    ] {
        golden(&state, &format!("\"{name}\""));
    }
    // A client that reads every error answer as an ErrorBody still reads this one.
    let body: ErrorBody = serde_json::from_str(
        r#"{"ready":false,"store":"not_ingested","labels":"ok","error":{"code":"not_ingested","message":"m"}}"#,
    )
    .unwrap();
    assert_eq!(body.error.code, "not_ingested");
}

#[test]
fn search_vectors() {
    golden(
        &SearchRequest {
            text: Some("red car".into()),
            vectors: Some(Vectors::Caption),
            ..SearchRequest::default()
        },
        r#"{"text":"red car","vectors":"caption"}"#,
    );
    for (word, vectors) in [
        ("image", Vectors::Image),
        ("caption", Vectors::Caption),
        ("fused", Vectors::Fused),
    ] {
        let asked: SearchRequest =
            serde_json::from_str(&format!(r#"{{"text":"t","vectors":"{word}"}}"#)).unwrap();
        assert_eq!(asked.vectors, Some(vectors));
    }
    refused::<SearchRequest>(r#"{"text":"t","vectors":"both"}"#, "unknown variant `both`");
}
