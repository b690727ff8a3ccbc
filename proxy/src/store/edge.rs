//! The embedded store: Qdrant Edge in a local directory (the default; no server).
//!
//! Layout under the storage directory (`./qdrant_storage` or `--storage`):
//! `<collection>/` is the Edge shard, `<collection>.spec.json` the [`CollectionSpec`] it was made
//! for (model, dimension, whether it has caption vectors), `<collection>.lock` an advisory lock: Edge is single-process, so a
//! second process (an `ingest` while a `proxy serve` holds the directory) is refused with a
//! message instead of corrupting the shard.
//!
//! Edge calls block; each runs on tokio's blocking pool. Writes go through Edge's write-ahead log
//! before `update` returns, so a point written before a `kill -9` is there after a restart (the
//! log is replayed by `EdgeShard::load`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use qdrant_edge::{
    Condition, CountRequest, Distance, EdgeConfigBuilder, EdgeShard, EdgeVectorParamsBuilder,
    FieldCondition, Filter, JsonPath, Match, NamedQuery, PayloadFieldSchema, PayloadSchemaType,
    PointId, PointInsertOperations, PointOperations, PointStructPersisted, QueryEnum,
    QueryRequestBuilder, RetrieveRequestBuilder, ScoringQuery, ScrollRequestBuilder, SetPayloadOp,
    UpdateOperation, ValueVariants, VectorInternal, VectorPersisted, VectorStructInternal,
    VectorStructPersisted, WithPayloadInterface, WithVector,
};
use qdrant_edge::{CreateIndex, FieldIndexOperations, PayloadOps};
use qdrant_edge::{HasIdCondition, RecommendQuery as EdgeRecommend, VectorRef};
use serde_json::Value;
use uuid::Uuid;

use super::{
    CAPTION_VECTOR, CollectionSpec, Hit, Payload, PayloadFilter, Point, RecommendQuery, Record,
    Result, SearchQuery, StoreError, Strategy, VectorName, VectorStore,
};
use crate::payload::INDEXED_FIELDS;

/// Qdrant Edge in a directory.
#[derive(Debug)]
pub struct EdgeStore {
    dir: PathBuf,
    open: RwLock<Option<Open>>,
}

#[derive(Debug, Clone)]
struct Open {
    shard: Arc<EdgeShard>,
    /// The spec recorded beside the shard.
    spec: CollectionSpec,
    /// Held for as long as the shard is open.
    _lock: Arc<File>,
}

impl EdgeStore {
    /// A store in `dir` (created on first write). Nothing is opened until a collection is.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            open: RwLock::new(None),
        }
    }

    fn shard(&self) -> Result<Arc<EdgeShard>> {
        let guard = self.open.read().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .map(|o| o.shard.clone())
            .ok_or_else(|| StoreError::Internal("no collection is open".into()))
    }

    fn open(&self, spec: &CollectionSpec, create: bool) -> Result<CollectionSpec> {
        super::validate_collection_name(&spec.name).map_err(StoreError::Invalid)?;
        if let Some(open) = self.open.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(open.spec.clone());
        }
        let shard_dir = self.dir.join(&spec.name);
        let spec_path = self.dir.join(format!("{}.spec.json", spec.name));
        let exists = spec_path.is_file();
        if !exists && !create {
            return Err(StoreError::NoCollection(spec.name.clone()));
        }
        fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let lock = lock(&self.dir.join(format!("{}.lock", spec.name)))?;
        let (shard, found) = if exists {
            let found: CollectionSpec = read_spec(&spec_path)?;
            spec.accepts(&found)?;
            (EdgeShard::load(&shard_dir, None).map_err(internal)?, found)
        } else {
            // A shard left without its spec file (a crash between the two writes) is empty or
            // partial: start again rather than guess which model made it.
            if shard_dir.exists() {
                fs::remove_dir_all(&shard_dir).map_err(|e| io(&shard_dir, e))?;
            }
            let params = || EdgeVectorParamsBuilder::new(spec.dim, Distance::Cosine).build();
            let mut config =
                EdgeConfigBuilder::new().vector(VectorName::Image.qdrant_name(), params());
            if spec.captions {
                config = config.vector(VectorName::Caption.qdrant_name(), params());
            }
            let shard = EdgeShard::new(&shard_dir, config.build()).map_err(internal)?;
            for field in INDEXED_FIELDS {
                keyword_index(&shard, field)?;
            }
            write_spec(&spec_path, spec)?;
            (shard, spec.clone())
        };
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = Some(Open {
            shard: Arc::new(shard),
            spec: found.clone(),
            _lock: Arc::new(lock),
        });
        Ok(found)
    }

    /// One page of a scored query, best first.
    async fn query(
        &self,
        scoring: QueryEnum,
        filter: Option<Filter>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Hit>> {
        let mut request = QueryRequestBuilder::new(limit)
            .query(ScoringQuery::Vector(scoring))
            .offset(offset)
            .with_payload(WithPayloadInterface::Bool(true));
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        let request = request.build();
        let hits = self
            .with_shard(move |shard| shard.query(request).map_err(internal))
            .await?;
        hits.into_iter()
            .map(|p| {
                Ok(Hit {
                    id: uuid_of(p.id)?,
                    score: p.score,
                    payload: p.payload.map(|p| p.0).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Run a blocking Edge call on the blocking pool.
    async fn with_shard<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shard = self.shard()?;
        tokio::task::spawn_blocking(move || f(&shard))
            .await
            .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl VectorStore for EdgeStore {
    async fn ensure_collection(&self, spec: &CollectionSpec) -> Result<CollectionSpec> {
        self.open(spec, true)
    }

    async fn open_collection(&self, spec: &CollectionSpec) -> Result<CollectionSpec> {
        self.open(spec, false)
    }

    async fn adopt(&self, _spec: &CollectionSpec) -> Result<()> {
        Err(StoreError::Invalid(
            "--adopt takes over a collection made by hand on a Qdrant server (QDRANT_URL); \
             the embedded store only holds collections that ingest made"
                .into(),
        ))
    }

    async fn layout(&self) -> Result<Option<super::cluster::Layout>> {
        Ok(None)
    }

    async fn index_field(&self, field: &str) -> Result<()> {
        let field = field.to_string();
        self.with_shard(move |shard| keyword_index(shard, &field))
            .await
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let points = points
            .into_iter()
            .map(|p| PointStructPersisted {
                id: PointId::Uuid(p.id),
                vector: vectors(p.vector, p.caption),
                payload: Some(qdrant_edge::Payload(p.payload)),
            })
            .collect();
        self.with_shard(move |shard| {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                ))
                .map_err(internal)
        })
        .await
    }

    async fn set_payload(&self, id: Uuid, payload: Payload) -> Result<()> {
        self.with_shard(move |shard| {
            // Clear then set: "replace" semantics (set alone merges keys).
            shard
                .update(UpdateOperation::PayloadOperation(
                    PayloadOps::ClearPayload {
                        points: vec![PointId::Uuid(id)],
                    },
                ))
                .map_err(internal)?;
            shard
                .update(UpdateOperation::PayloadOperation(PayloadOps::SetPayload(
                    SetPayloadOp {
                        payload: qdrant_edge::Payload(payload),
                        points: Some(vec![PointId::Uuid(id)]),
                        filter: None,
                        key: None,
                    },
                )))
                .map_err(internal)
        })
        .await
    }

    async fn delete(&self, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.iter().map(|id| PointId::Uuid(*id)).collect();
        self.with_shard(move |shard| {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePoints { ids },
                ))
                .map_err(internal)
        })
        .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>> {
        let nearest = QueryEnum::Nearest(NamedQuery {
            query: VectorInternal::Dense(query.vector.clone()),
            using: match query.using {
                VectorName::Image => None,
                VectorName::Caption => Some(CAPTION_VECTOR.to_string()),
            },
        });
        let filter = filter(&query.filter)?;
        self.query(nearest, filter, query.limit, query.offset).await
    }

    async fn recommend(&self, query: &RecommendQuery) -> Result<Vec<Hit>> {
        let super::UnitExamples { positive, negative } = query.unit_examples()?;
        let scoring = match query.strategy {
            // Qdrant's own formula; the server computes the same vector before a plain search.
            Strategy::AverageVector => {
                let vector = qdrant_edge::avg_vector_for_recommendation(
                    positive.iter().map(|v| VectorRef::Dense(v)),
                    negative.iter().map(|v| VectorRef::Dense(v)).peekable(),
                )
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
                QueryEnum::Nearest(NamedQuery {
                    query: vector,
                    using: None,
                })
            }
            Strategy::BestScore => QueryEnum::RecommendBestScore(NamedQuery {
                query: EdgeRecommend::new(
                    positive.into_iter().map(VectorInternal::Dense).collect(),
                    negative.into_iter().map(VectorInternal::Dense).collect(),
                ),
                using: None,
            }),
        };
        let filter = excluding(filter(&query.filter)?, &query.exclude);
        self.query(scoring, filter, query.limit, query.offset).await
    }

    async fn get(&self, ids: &[Uuid], with_vector: bool) -> Result<Vec<Record>> {
        let wanted: Vec<Uuid> = ids.to_vec();
        let request =
            RetrieveRequestBuilder::new(wanted.iter().map(|id| PointId::Uuid(*id)).collect())
                .with_payload(WithPayloadInterface::Bool(true))
                .with_vector(WithVector::Bool(with_vector))
                .build();
        let found = self
            .with_shard(move |shard| shard.retrieve(request).map_err(internal))
            .await?;
        let records = found
            .into_iter()
            .map(|r| {
                let (vector, caption) = r.vector.map(dense).unwrap_or_default();
                Ok(Record {
                    id: uuid_of(r.id)?,
                    payload: r.payload.map(|p| p.0).unwrap_or_default(),
                    vector,
                    caption,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(super::in_asked_order(records, &wanted))
    }

    async fn scroll(
        &self,
        from: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<Record>, Option<Uuid>)> {
        let mut request = ScrollRequestBuilder::new()
            .limit(limit)
            .with_payload(WithPayloadInterface::Bool(true))
            .with_vector(WithVector::Bool(false));
        if let Some(from) = from {
            request = request.offset(PointId::Uuid(from));
        }
        let request = request.build();
        let (records, next) = self
            .with_shard(move |shard| shard.scroll(request).map_err(internal))
            .await?;
        let records = records
            .into_iter()
            .map(|r| {
                Ok(Record {
                    id: uuid_of(r.id)?,
                    payload: r.payload.map(|p| p.0).unwrap_or_default(),
                    vector: None,
                    caption: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((records, next.map(uuid_of).transpose()?))
    }

    async fn count(&self) -> Result<usize> {
        self.with_shard(|shard| shard.count(CountRequest::new()).map_err(internal))
            .await
    }

    async fn optimize(&self) -> Result<()> {
        self.with_shard(|shard| {
            shard.optimize().map_err(internal)?;
            shard.flush().map_err(internal)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.shard().map(|_| ())
    }
}

/// A keyword payload index on `field` (Edge replaces an existing index of the same field).
fn keyword_index(shard: &EdgeShard, field: &str) -> Result<()> {
    shard
        .update(UpdateOperation::FieldIndexOperation(
            FieldIndexOperations::CreateIndex(CreateIndex {
                field_name: json_path(field)?,
                field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
            }),
        ))
        .map_err(internal)
}

/// Refuse a collection made by another model or with another dimension.
fn lock(path: &Path) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "{} is in use by another process (a running `proxy serve` or `ingest`); \
             embedded Qdrant serves one process at a time: stop it first",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io(path, e)),
    }
}

fn read_spec(path: &Path) -> Result<CollectionSpec> {
    let text = fs::read_to_string(path).map_err(|e| io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Internal(format!("{}: {e}", path.display())))
}

/// Write the spec atomically (temp file, fsync, rename).
fn write_spec(path: &Path, spec: &CollectionSpec) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text =
        serde_json::to_string_pretty(spec).map_err(|e| StoreError::Internal(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| io(path, e))
}

fn filter(filter: &PayloadFilter) -> Result<Option<Filter>> {
    super::check_filter(filter)?;
    if filter.is_empty() {
        return Ok(None);
    }
    let must = filter
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(s) => ValueVariants::String(s.clone()),
                Value::Bool(b) => ValueVariants::Bool(*b),
                Value::Number(n) => ValueVariants::Integer(n.as_i64().unwrap_or_default()),
                _ => unreachable!("check_filter admits strings, integers and booleans"),
            };
            Ok(Condition::Field(FieldCondition::new_match(
                json_path(key)?,
                Match::new_value(value),
            )))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Filter {
        must: Some(must),
        ..Default::default()
    }))
}

/// `filter`, with the points `exclude` names left out.
fn excluding(filter: Option<Filter>, exclude: &[Uuid]) -> Option<Filter> {
    if exclude.is_empty() {
        return filter;
    }
    let ids: HasIdCondition = exclude.iter().map(|id| PointId::Uuid(*id)).collect();
    let mut filter = filter.unwrap_or_default();
    filter.must_not = Some(vec![Condition::HasId(ids)]);
    Some(filter)
}

pub(super) fn json_path(key: &str) -> Result<JsonPath> {
    JsonPath::try_from(key)
        .map_err(|()| StoreError::Invalid(format!("`{key}` is not a valid payload field name")))
}

fn uuid_of(id: PointId) -> Result<Uuid> {
    match id {
        PointId::Uuid(u) => Ok(u),
        PointId::NumId(n) => Err(StoreError::Internal(format!(
            "point {n} has a numeric id; text2img writes UUIDs only"
        ))),
    }
}

/// A point's vectors as Edge stores them: the unnamed image vector, and the caption vector by
/// name when there is one.
fn vectors(image: Vec<f32>, caption: Option<Vec<f32>>) -> VectorStructPersisted {
    match caption {
        None => VectorStructPersisted::from(image),
        Some(caption) => VectorStructPersisted::Named(HashMap::from([
            (
                VectorName::Image.qdrant_name().to_string(),
                VectorPersisted::Dense(image),
            ),
            (CAPTION_VECTOR.to_string(), VectorPersisted::Dense(caption)),
        ])),
    }
}

/// The image and caption vectors read back.
fn dense(vector: VectorStructInternal) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    match vector {
        VectorStructInternal::Single(v) => (Some(v), None),
        VectorStructInternal::Named(mut named) => {
            let mut take = |name: &str| match named.remove(name) {
                Some(VectorInternal::Dense(v)) => Some(v),
                _ => None,
            };
            (take(VectorName::Image.qdrant_name()), take(CAPTION_VECTOR))
        }
        VectorStructInternal::MultiDense(_) => (None, None),
    }
}

fn internal(e: qdrant_edge::OperationError) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("{}: {e}", path.display()))
}
