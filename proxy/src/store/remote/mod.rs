//! A Qdrant server or cluster (Qdrant Cloud) over gRPC, through `qdrant-client`.
//!
//! Used when `QDRANT_URL` is set. TLS is on for `https://` URLs; the API key goes into the gRPC
//! metadata and nowhere else: every message that leaves this module has it scrubbed
//! ([`RemoteStore::scrub`]), so an error cannot carry it into a response or a log line.

use std::collections::HashMap;
use std::time::Duration;

use qdrant_client::Qdrant;
use qdrant_client::QdrantError;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    FieldType, Filter, GetPointsBuilder, PointId, PointStruct, PointsIdsList, Query,
    QueryPointsBuilder, RecommendInputBuilder, RecommendStrategy, RetrievedPoint, ScoredPoint,
    ScrollPointsBuilder, SearchPointsBuilder, SetPayloadPointsBuilder, UpdateCollectionBuilder,
    UpsertPointsBuilder, point_id::PointIdOptions,
};
use serde_json::Value;
use uuid::Uuid;

mod collection;

use super::cluster::{ClusterSettings, Layout};
use super::failure::{self, Class};
use super::{
    CAPTION_VECTOR, CollectionSpec, Hit, Payload, Point, RecommendQuery, Record, Result,
    SearchQuery, StoreError, Strategy, VectorName, VectorStore,
};
use crate::payload::INDEXED_FIELDS;

/// Where the server is and how to reach it.
#[derive(Clone)]
pub struct RemoteConfig {
    pub url: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// How a collection ingest creates is laid out (ignored for an existing one).
    pub cluster: ClusterSettings,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// A collection on a Qdrant server.
pub struct RemoteStore {
    client: Qdrant,
    config: RemoteConfig,
    collection: std::sync::RwLock<Option<String>>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// A client for `config.url`. Connects lazily: a server that is down now is an `Unavailable`
    /// error per call, and the store recovers by itself when the server is back.
    pub fn new(config: RemoteConfig) -> Result<Self> {
        let client = Qdrant::from_url(&config.url)
            .api_key(config.api_key.clone())
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            // The version check is a blocking call at start; readiness reports the same.
            .skip_compatibility_check()
            .build()
            .map_err(|e| StoreError::Invalid(format!("QDRANT_URL `{}`: {e}", config.url)))?;
        Ok(Self {
            client,
            config,
            collection: std::sync::RwLock::new(None),
        })
    }

    fn name(&self) -> Result<String> {
        self.collection
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Internal("no collection is open".into()))
    }

    /// Remove the API key from a message.
    fn scrub(&self, message: String) -> String {
        match &self.config.api_key {
            Some(key) if !key.is_empty() => message.replace(key.as_str(), "<redacted>"),
            _ => message,
        }
    }

    /// A client error as a [`StoreError`] of its class (`failure.rs` decides), its message
    /// (for the log) with the API key scrubbed.
    fn error(&self, e: QdrantError) -> StoreError {
        let (class, message) = match &e {
            QdrantError::ResponseError { status } => {
                let code = i32::from(status.code());
                let text = match code {
                    16 | 7 => "Qdrant refused the API key (QDRANT_API_KEY)".to_string(),
                    _ => status.message().to_string(),
                };
                (failure::by_code(code, status.message()), text)
            }
            QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => {
                (Class::Unavailable, e.to_string())
            }
            _ => (Class::Internal, e.to_string()),
        };
        let message = self.scrub(format!("{} ({}): {message}", self.config.url, "qdrant"));
        match class {
            Class::Unavailable => StoreError::Unavailable(message),
            Class::NotFound => StoreError::NoCollection(self.name().unwrap_or_default()),
            Class::Internal => StoreError::Internal(message),
        }
    }

    /// Whether the collection `name` exists.
    async fn exists(&self, name: &str) -> Result<bool> {
        self.client
            .collection_exists(name)
            .await
            .map_err(|e| self.error(e))
    }

    /// The collection `name` as the server describes it.
    async fn found(&self, name: &str) -> Result<collection::Found> {
        let info = self
            .client
            .collection_info(name)
            .await
            .map_err(|e| self.error(e))?
            .result
            .ok_or_else(|| StoreError::Internal("collection info is empty".into()))?;
        Ok(collection::Found::read(info.config.unwrap_or_default()))
    }

    async fn check(&self, spec: &CollectionSpec) -> Result<CollectionSpec> {
        self.found(&spec.name).await?.check(spec)
    }

    /// Index the payload fields searches filter on (indexing again is a no-op).
    async fn index_fields(&self, name: &str) -> Result<()> {
        for field in INDEXED_FIELDS {
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(name, field, FieldType::Keyword)
                        .wait(true),
                )
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl VectorStore for RemoteStore {
    async fn ensure_collection(&self, spec: &CollectionSpec) -> Result<CollectionSpec> {
        if !self.exists(&spec.name).await? {
            let request = collection::create_request(spec, &self.config.cluster);
            let created = self.client.create_collection(request).await;
            // Another ingest (`--shard` on another machine) may have made it meanwhile: then
            // its spec is checked below like any existing collection's.
            if let Err(e) = created
                && !self.exists(&spec.name).await?
            {
                return Err(self.error(e));
            }
            self.index_fields(&spec.name).await?;
        }
        let found = self.check(spec).await?;
        *self.collection.write().unwrap_or_else(|e| e.into_inner()) = Some(spec.name.clone());
        Ok(found)
    }

    async fn open_collection(&self, spec: &CollectionSpec) -> Result<CollectionSpec> {
        // Remember the name first: a server that is down now is retried on every call.
        *self.collection.write().unwrap_or_else(|e| e.into_inner()) = Some(spec.name.clone());
        if !self.exists(&spec.name).await? {
            return Err(StoreError::NoCollection(spec.name.clone()));
        }
        self.check(spec).await
    }

    async fn adopt(&self, spec: &CollectionSpec) -> Result<()> {
        if !self.exists(&spec.name).await? {
            return Err(StoreError::NoCollection(spec.name.clone()));
        }
        self.found(&spec.name).await?.check_adoptable(spec)?;
        self.client
            .update_collection(
                UpdateCollectionBuilder::new(&spec.name).metadata(collection::metadata(spec, None)),
            )
            .await
            .map_err(|e| self.error(e))?;
        self.index_fields(&spec.name).await
    }

    async fn layout(&self) -> Result<Option<Layout>> {
        Ok(Some(self.found(&self.name()?).await?.layout))
    }

    async fn index_field(&self, field: &str) -> Result<()> {
        self.client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(self.name()?, field, FieldType::Keyword)
                    .wait(true),
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = points
            .into_iter()
            .map(|p| match p.caption {
                None => PointStruct::new(p.id.to_string(), p.vector, p.payload),
                Some(caption) => {
                    let vectors = HashMap::from([
                        (VectorName::Image.qdrant_name().to_string(), p.vector),
                        (CAPTION_VECTOR.to_string(), caption),
                    ]);
                    PointStruct::new(p.id.to_string(), vectors, p.payload)
                }
            })
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(self.name()?, points).wait(true))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn set_payload(&self, id: Uuid, payload: Payload) -> Result<()> {
        self.client
            .overwrite_payload(
                SetPayloadPointsBuilder::new(self.name()?, qdrant_client::Payload::from(payload))
                    .points_selector(PointsIdsList {
                        ids: vec![id.to_string().into()],
                    })
                    .wait(true),
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn delete(&self, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.client
            .delete_points(
                DeletePointsBuilder::new(self.name()?)
                    .points(PointsIdsList {
                        ids: ids.iter().map(|id| id.to_string().into()).collect(),
                    })
                    .wait(true),
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>> {
        super::check_filter(&query.filter)?;
        // Field names as the server parses them (the same parser as Edge's), refused here in our
        // own words: the server's refusal would be a store fault (`failure.rs`), not a 400.
        for key in query.filter.keys() {
            super::edge::json_path(key)?;
        }
        let mut request =
            SearchPointsBuilder::new(self.name()?, query.vector.clone(), query.limit as u64)
                .offset(query.offset as u64)
                .with_payload(true);
        if query.using == VectorName::Caption {
            request = request.vector_name(CAPTION_VECTOR);
        }
        if !query.filter.is_empty() {
            request = request.filter(filter(&query.filter));
        }
        let response = self
            .client
            .search_points(request)
            .await
            .map_err(|e| self.error(e))?;
        hits(response.result)
    }

    async fn recommend(&self, query: &RecommendQuery) -> Result<Vec<Hit>> {
        super::check_filter(&query.filter)?;
        let super::UnitExamples { positive, negative } = query.unit_examples()?;
        let strategy = match query.strategy {
            Strategy::AverageVector => RecommendStrategy::AverageVector,
            Strategy::BestScore => RecommendStrategy::BestScore,
        };
        let mut input = RecommendInputBuilder::default().strategy(strategy);
        for vector in positive {
            input = input.add_positive(vector);
        }
        for vector in negative {
            input = input.add_negative(vector);
        }
        let mut filter = filter(&query.filter);
        if !query.exclude.is_empty() {
            filter.must_not = vec![Condition::has_id(
                query.exclude.iter().map(|id| PointId::from(id.to_string())),
            )];
        }
        let request = QueryPointsBuilder::new(self.name()?)
            .query(Query::new_recommend(input))
            .limit(query.limit as u64)
            .offset(query.offset as u64)
            .filter(filter)
            .with_payload(true);
        let response = self
            .client
            .query(request)
            .await
            .map_err(|e| self.error(e))?;
        hits(response.result)
    }

    async fn get(&self, ids: &[Uuid], with_vector: bool) -> Result<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<PointId> = ids.iter().map(|id| id.to_string().into()).collect();
        let response = self
            .client
            .get_points(
                GetPointsBuilder::new(self.name()?, wanted)
                    .with_payload(true)
                    .with_vectors(with_vector),
            )
            .await
            .map_err(|e| self.error(e))?;
        let records = response
            .result
            .into_iter()
            .map(record_of)
            .collect::<Result<Vec<_>>>()?;
        Ok(super::in_asked_order(records, ids))
    }

    async fn scroll(
        &self,
        from: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<Record>, Option<Uuid>)> {
        let mut request = ScrollPointsBuilder::new(self.name()?)
            .limit(limit as u32)
            .with_payload(true)
            .with_vectors(false);
        if let Some(from) = from {
            request = request.offset(PointId::from(from.to_string()));
        }
        let response = self
            .client
            .scroll(request)
            .await
            .map_err(|e| self.error(e))?;
        let records = response
            .result
            .into_iter()
            .map(record_of)
            .collect::<Result<Vec<_>>>()?;
        let next = response
            .next_page_offset
            .map(|id| uuid_of(Some(id)))
            .transpose()?;
        Ok((records, next))
    }

    async fn count(&self) -> Result<usize> {
        let response = self
            .client
            .count(CountPointsBuilder::new(self.name()?).exact(true))
            .await
            .map_err(|e| self.error(e))?;
        Ok(response.result.map(|r| r.count as usize).unwrap_or(0))
    }

    async fn optimize(&self) -> Result<()> {
        // The server indexes in the background by itself.
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .health_check()
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

fn filter(filter: &super::PayloadFilter) -> Filter {
    Filter::must(filter.iter().map(|(key, value)| match value {
        Value::String(s) => Condition::matches(key.clone(), s.clone()),
        Value::Bool(b) => Condition::matches(key.clone(), *b),
        Value::Number(n) => Condition::matches(key.clone(), n.as_i64().unwrap_or_default()),
        _ => unreachable!("check_filter admits strings, integers and booleans"),
    }))
}

/// Scored points as hits, in the server's order (best first).
fn hits(points: Vec<ScoredPoint>) -> Result<Vec<Hit>> {
    points
        .into_iter()
        .map(|p| {
            Ok(Hit {
                id: uuid_of(p.id)?,
                score: p.score,
                payload: payload_of(p.payload),
            })
        })
        .collect()
}

fn uuid_of(id: Option<PointId>) -> Result<Uuid> {
    match id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Uuid(s)) => {
            Uuid::parse_str(&s).map_err(|e| StoreError::Internal(format!("point id `{s}`: {e}")))
        }
        Some(PointIdOptions::Num(n)) => Err(StoreError::Internal(format!(
            "point {n} has a numeric id; text2img writes UUIDs only"
        ))),
        None => Err(StoreError::Internal(
            "a point came back without an id".into(),
        )),
    }
}

fn payload_of(payload: HashMap<String, qdrant_client::qdrant::Value>) -> Payload {
    payload
        .into_iter()
        .map(|(k, v)| (k, v.into_json()))
        .collect()
}

fn record_of(point: RetrievedPoint) -> Result<Record> {
    let vector = |name: VectorName| {
        point
            .vectors
            .as_ref()
            .and_then(|v| v.get_vector_by_name(name.qdrant_name()))
            .and_then(|v| match v {
                qdrant_client::qdrant::vector_output::Vector::Dense(d) => Some(d.data),
                _ => None,
            })
    };
    Ok(Record {
        vector: vector(VectorName::Image),
        caption: vector(VectorName::Caption),
        id: uuid_of(point.id)?,
        payload: payload_of(point.payload),
    })
}
