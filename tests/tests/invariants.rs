//! Architecture invariants that no compiler error would catch, checked on the workspace's
//! manifests and resolved dependency graph (`cargo metadata`, every platform):
//!
//! - the page crate (`frontend`) does not depend on `clip`, directly or through anything else,
//!   so its wasm never carries the model (the worker crate does, and the check must see that);
//! - `wire`, which every part depends on, stays serde-only.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The resolved graph: package id → (name, manifest path), and id → the ids it depends on
/// through normal and build dependencies (what ends up linked into the crate).
struct Graph {
    packages: HashMap<String, (String, PathBuf)>,
    links: HashMap<String, Vec<String>>,
    metadata: Value,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(workspace_root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let id = p["id"].as_str().expect("id").to_string();
            let name = p["name"].as_str().expect("name").to_string();
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest_path"));
            (id, (name, manifest))
        })
        .collect();
    let links = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
        .iter()
        .map(|node| {
            let linked = node["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .filter(|dep| {
                    // `kind` is null for normal dependencies; dev-dependencies never link in.
                    dep["dep_kinds"].as_array().is_some_and(|kinds| {
                        kinds
                            .iter()
                            .any(|k| k["kind"].is_null() || k["kind"] == "build")
                    })
                })
                .map(|dep| dep["pkg"].as_str().expect("pkg").to_string())
                .collect();
            (node["id"].as_str().expect("id").to_string(), linked)
        })
        .collect();
    Graph {
        packages,
        links,
        metadata,
    }
}

impl Graph {
    /// The id of the workspace crate whose manifest is `<root>/<dir>/Cargo.toml`.
    fn member(&self, dir: &str) -> String {
        let manifest = workspace_root().join(dir).join("Cargo.toml");
        self.packages
            .iter()
            .find(|(_, (_, path))| *path == manifest)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no workspace crate in {dir}/"))
    }

    /// Every package `id` links, directly or not.
    fn reachable(&self, id: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![id.to_string()];
        while let Some(next) = todo.pop() {
            for dep in self.links.get(&next).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    }

    fn name(&self, id: &str) -> &str {
        &self.packages[id].0
    }

    /// The dependencies `id`'s manifest declares, of every kind and for every target.
    fn declared(&self, id: &str) -> Vec<String> {
        let package = self.metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|p| p["id"] == id)
            .expect("the package");
        package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .map(|d| d["name"].as_str().expect("name").to_string())
            .collect()
    }
}

#[test]
fn the_page_never_depends_on_clip() {
    let graph = graph();
    let clip = graph.member("clip");
    let page = graph.member("frontend/page");
    assert_eq!(graph.name(&page), "frontend");
    // The check sees a dependency on clip where there is one: the worker's.
    let worker = graph.member("frontend/worker");
    assert!(graph.reachable(&worker).contains(&clip));

    let declared = graph.declared(&page);
    assert!(
        !declared.iter().any(|d| d == "clip"),
        "frontend/page/Cargo.toml declares clip; the page must reach the model through the \
         worker's messages (wire::worker) only"
    );
    let reachable = graph.reachable(&page);
    assert!(
        !reachable.contains(&clip),
        "the page crate reaches clip through its dependencies"
    );
    assert!(
        !reachable.contains(&worker),
        "the page crate depends on the worker crate"
    );
}

#[test]
fn wire_is_serde_only() {
    let graph = graph();
    let wire = graph.member("wire");
    let direct: BTreeSet<&str> = graph.links[&wire].iter().map(|id| graph.name(id)).collect();
    assert_eq!(direct, BTreeSet::from(["serde", "serde_json"]));
}
