//! store/remote/collection: what does a text2img collection look like on a Qdrant server?
//!
//! How one is created (cosine vectors of the model's dimension, the operator's
//! [`ClusterSettings`], the spec and the settings recorded in the collection's metadata), and how
//! a collection found on a server is read back: its vectors, the model recorded in it (none when
//! it was made by hand) and its [`Layout`]. Pure: it builds requests and reads responses; the
//! calls are in `mod.rs`.

use std::collections::HashMap;

use qdrant_client::qdrant::{
    BinaryQuantizationBuilder, CollectionConfig, CreateCollectionBuilder, Distance, Memory,
    PayloadStorageParams, QuantizationType, ScalarQuantizationBuilder, VectorParamsBuilder,
    VectorsConfigBuilder, quantization_config, vectors_config::Config,
};
use serde_json::Value;

use crate::store::cluster::{ClusterSettings, Layout, Quantization};
use crate::store::{CAPTION_VECTOR, CollectionSpec, Result, StoreError, VectorName};

/// Keys of the collection metadata that record the [`CollectionSpec`] and how it was made.
const META_MODEL: &str = "text2img_model";
const META_DIM: &str = "text2img_dim";
const META_CLUSTER: &str = "text2img_cluster";
const META_ADOPTED: &str = "text2img_adopted";

/// The request that creates `spec`'s collection laid out as `cluster` asks.
pub fn create_request(spec: &CollectionSpec, cluster: &ClusterSettings) -> CreateCollectionBuilder {
    let mut params = VectorParamsBuilder::new(spec.dim as u64, Distance::Cosine);
    if let Some(on_disk) = cluster.on_disk {
        params = params.memory(placement(on_disk));
    }
    let request = CreateCollectionBuilder::new(&spec.name).metadata(metadata(spec, Some(cluster)));
    let mut request = if spec.captions {
        // The image vector keeps the default name, so searches of it read the same either way.
        let mut vectors = VectorsConfigBuilder::default();
        vectors.add_named_vector_params(VectorName::Image.qdrant_name(), params.clone());
        vectors.add_named_vector_params(CAPTION_VECTOR, params);
        request.vectors_config(vectors)
    } else {
        request.vectors_config(params)
    };
    if let Some(shards) = cluster.shards {
        request = request.shard_number(shards);
    }
    if let Some(replicas) = cluster.replication_factor {
        request = request.replication_factor(replicas);
    }
    if let Some(writes) = cluster.write_consistency {
        request = request.write_consistency_factor(writes);
    }
    if let Some(on_disk) = cluster.on_disk {
        request = request.payload(PayloadStorageParams {
            memory: Some(placement(on_disk).into()),
        });
    }
    match cluster.quantization {
        None | Some(Quantization::None | Quantization::Other) => request,
        Some(Quantization::Int8) => request.quantization_config(
            ScalarQuantizationBuilder::default()
                .r#type(QuantizationType::Int8.into())
                .quantile(0.99)
                .memory(Memory::Pinned),
        ),
        Some(Quantization::Binary) => {
            request.quantization_config(BinaryQuantizationBuilder::default().memory(Memory::Pinned))
        }
    }
}

/// Qdrant's memory placement for "on disk" (memory-mapped, cached with use) or "in RAM".
fn placement(on_disk: bool) -> Memory {
    if on_disk {
        Memory::Cold
    } else {
        Memory::Cached
    }
}

/// Whether a storage is on disk: its memory placement, else the older `on_disk` flag.
fn is_on_disk(memory: Option<i32>, legacy: Option<bool>) -> bool {
    match memory.and_then(|m| Memory::try_from(m).ok()) {
        Some(memory) => memory == Memory::Cold,
        None => legacy.unwrap_or(false),
    }
}

/// The metadata that records `spec` (and, at creation, the settings asked); adopting records the
/// spec and that it was adopted.
pub fn metadata(
    spec: &CollectionSpec,
    cluster: Option<&ClusterSettings>,
) -> HashMap<String, Value> {
    let mut out = HashMap::from([
        (META_MODEL.to_string(), Value::from(spec.model.clone())),
        (META_DIM.to_string(), Value::from(spec.dim)),
    ]);
    match cluster {
        Some(cluster) => {
            let asked = serde_json::to_value(cluster).unwrap_or(Value::Null);
            out.insert(META_CLUSTER.to_string(), asked);
        }
        None => {
            out.insert(META_ADOPTED.to_string(), Value::from(true));
        }
    }
    out
}

/// A collection as found on the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The size of its unnamed (image) vector; `None` when it has none.
    pub dim: Option<usize>,
    /// Whether it has the named caption vector beside the unnamed one.
    pub captions: bool,
    pub cosine: bool,
    /// The model recorded in its metadata; `None` when text2img did not make or adopt it.
    pub model: Option<String>,
    pub layout: Layout,
}

impl Found {
    /// Read a collection's configuration.
    pub fn read(config: CollectionConfig) -> Self {
        let params = config.params.unwrap_or_default();
        let vectors = params.vectors_config.clone().and_then(|v| v.config);
        let captions = matches!(&vectors, Some(Config::ParamsMap(map))
            if map.map.contains_key(CAPTION_VECTOR));
        let vectors = vectors.and_then(|c| match c {
            Config::Params(p) => Some(p),
            Config::ParamsMap(mut map) => map.map.remove(VectorName::Image.qdrant_name()),
        });
        let model = config
            .metadata
            .get(META_MODEL)
            .and_then(|v| v.clone().into_json().as_str().map(str::to_string));
        let quantization = match config.quantization_config.and_then(|q| q.quantization) {
            None => Quantization::None,
            Some(quantization_config::Quantization::Scalar(_)) => Quantization::Int8,
            Some(quantization_config::Quantization::Binary(_)) => Quantization::Binary,
            Some(_) => Quantization::Other,
        };
        // Servers before 1.19 report only the `on_disk` flags.
        #[allow(deprecated)]
        let (vectors_on_disk, payload_on_disk) = (
            vectors
                .as_ref()
                .is_some_and(|v| is_on_disk(v.memory, v.on_disk)),
            is_on_disk(
                params.payload.and_then(|p| p.memory),
                Some(params.on_disk_payload),
            ),
        );
        let layout = Layout {
            shards: params.shard_number,
            replication_factor: params.replication_factor.unwrap_or(1),
            write_consistency: params.write_consistency_factor.unwrap_or(1),
            vectors_on_disk,
            payload_on_disk,
            quantization,
        };
        Self {
            captions,
            dim: vectors.as_ref().map(|v| v.size as usize),
            cosine: vectors.is_some_and(|v| v.distance == Distance::Cosine as i32),
            model,
            layout,
        }
    }

    /// Whether `spec`'s vectors belong here: made (or adopted) for the same model and dimension.
    /// Cluster settings and caption vectors do not matter: a collection laid out otherwise is
    /// used as it is. Returns the collection's own spec.
    pub fn check(&self, spec: &CollectionSpec) -> Result<CollectionSpec> {
        let Some(model) = &self.model else {
            return Err(StoreError::NotOurs {
                collection: spec.name.clone(),
                holds: self.holds(),
            });
        };
        let found = CollectionSpec {
            name: spec.name.clone(),
            dim: self.dim.unwrap_or(0),
            model: model.clone(),
            captions: self.captions,
        };
        spec.accepts(&found)?;
        Ok(found)
    }

    /// Whether `spec`'s model can adopt this collection made by hand: one unnamed vector of the
    /// model's dimension, cosine distance, and no other model recorded.
    pub fn check_adoptable(&self, spec: &CollectionSpec) -> Result<()> {
        let refuse = |why: String| {
            Err(StoreError::Invalid(format!(
                "collection `{}` cannot be adopted: {why}",
                spec.name
            )))
        };
        match self.dim {
            None => {
                return refuse(
                    "it has no unnamed vector; text2img searches the unnamed one".into(),
                );
            }
            Some(dim) if dim != spec.dim => {
                return refuse(format!(
                    "it holds {dim}-d vectors and `{}` makes {}-d ones",
                    spec.model, spec.dim
                ));
            }
            Some(_) if !self.cosine => {
                return refuse("its distance is not cosine (text2img ranks by cosine)".into());
            }
            Some(_) => {}
        }
        match &self.model {
            Some(_) => self.check(spec).map(drop),
            None => Ok(()),
        }
    }

    /// What the collection holds, in words.
    fn holds(&self) -> String {
        match self.dim {
            Some(dim) => format!("{dim}-d vectors"),
            None => "only named vectors".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::{
        CollectionParams, QuantizationConfig, ScalarQuantization, VectorParams, VectorParamsMap,
        VectorsConfig,
    };

    use super::*;

    fn spec() -> CollectionSpec {
        CollectionSpec {
            name: "images".into(),
            dim: 4,
            model: "tiny".into(),
            captions: false,
        }
    }

    fn config(vectors: Config, model: Option<&str>) -> CollectionConfig {
        let mut metadata = HashMap::new();
        if let Some(model) = model {
            metadata.insert(META_MODEL.to_string(), Value::from(model).into());
        }
        CollectionConfig {
            params: Some(CollectionParams {
                shard_number: 3,
                replication_factor: Some(2),
                payload: Some(PayloadStorageParams {
                    memory: Some(Memory::Cold.into()),
                }),
                vectors_config: Some(VectorsConfig {
                    config: Some(vectors),
                }),
                ..Default::default()
            }),
            quantization_config: Some(QuantizationConfig {
                quantization: Some(quantization_config::Quantization::Scalar(
                    ScalarQuantization::default(),
                )),
            }),
            metadata,
            ..Default::default()
        }
    }

    fn vectors(dim: u64, distance: Distance) -> Config {
        Config::Params(VectorParams {
            size: dim,
            distance: distance.into(),
            memory: Some(Memory::Cold.into()),
            ..Default::default()
        })
    }

    #[test]
    fn reads_vectors_model_and_layout() {
        let found = Found::read(config(vectors(4, Distance::Cosine), Some("tiny")));
        assert_eq!(found.dim, Some(4));
        assert!(found.cosine);
        assert_eq!(found.model.as_deref(), Some("tiny"));
        assert_eq!(
            found.layout.to_string(),
            "3 shards, replication factor 2, write consistency 1, vectors on disk, \
             payload on disk, quantization int8"
        );
        assert!(found.check(&spec()).is_ok());
    }

    #[test]
    fn caption_vectors_are_made_and_read_back_beside_the_unnamed_one() {
        let spec = CollectionSpec {
            captions: true,
            ..spec()
        };
        let request = create_request(&spec, &ClusterSettings::default()).build();
        let Some(Config::ParamsMap(map)) = request.vectors_config.and_then(|v| v.config) else {
            panic!("a collection with captions has named vectors");
        };
        let names: Vec<&str> = map.map.keys().map(String::as_str).collect();
        assert_eq!(names.len(), 2);
        assert!(
            names.contains(&"") && names.contains(&CAPTION_VECTOR),
            "{names:?}"
        );
        let found = Found::read(config(Config::ParamsMap(map), Some("tiny")));
        assert_eq!((found.dim, found.captions), (Some(4), true));
        assert!(
            found
                .check(&CollectionSpec {
                    captions: false,
                    ..spec.clone()
                })
                .is_ok_and(|s| s.captions)
        );
        let plain = Found::read(config(vectors(4, Distance::Cosine), Some("tiny")));
        assert!(plain.check(&spec).is_ok_and(|s| !s.captions));
    }

    #[test]
    fn a_collection_made_by_hand_is_not_ours_until_adopted() {
        let found = Found::read(config(vectors(4, Distance::Cosine), None));
        let err = found.check(&spec()).unwrap_err();
        assert!(matches!(err, StoreError::NotOurs { .. }), "{err}");
        assert!(err.to_string().contains("--adopt"), "{err}");
        assert!(found.check_adoptable(&spec()).is_ok());
    }

    #[test]
    fn adoption_refuses_what_text2img_cannot_search() {
        let refused = [
            (vectors(8, Distance::Cosine), None, "8-d vectors"),
            (vectors(4, Distance::Dot), None, "not cosine"),
            (
                Config::ParamsMap(VectorParamsMap::default()),
                None,
                "no unnamed vector",
            ),
            (vectors(4, Distance::Cosine), Some("other"), "`other`"),
        ];
        for (vectors, model, why) in refused {
            let err = Found::read(config(vectors, model))
                .check_adoptable(&spec())
                .unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn creation_records_the_spec_and_the_settings_asked() {
        let cluster = ClusterSettings {
            shards: Some(6),
            replication_factor: Some(2),
            write_consistency: Some(1),
            on_disk: Some(true),
            quantization: Some(Quantization::Int8),
        };
        let request = create_request(&spec(), &cluster).build();
        assert_eq!(request.shard_number, Some(6));
        assert_eq!(request.replication_factor, Some(2));
        assert_eq!(request.write_consistency_factor, Some(1));
        assert_eq!(
            request.payload.and_then(|p| p.memory),
            Some(Memory::Cold.into())
        );
        assert!(request.quantization_config.is_some());
        let recorded = request.metadata[META_CLUSTER].clone().into_json();
        assert_eq!(
            serde_json::from_value::<ClusterSettings>(recorded).unwrap(),
            cluster
        );
        assert_eq!(request.metadata[META_MODEL].clone().into_json(), "tiny");
        let plain = create_request(&spec(), &ClusterSettings::default()).build();
        assert_eq!(plain.shard_number, None);
        assert_eq!(plain.replication_factor, None);
        assert!(plain.quantization_config.is_none());
    }
}
