//! The browser app end to end: the trunk build in `public/`, served by the proxy's router with the
//! tiny fixture CLIP as the model bundle, opened in headless Chromium. The page must load the
//! model, encode a typed query to the same vector as native code, and say plainly when there is
//! no model.
//!
//! Needs `cd frontend && trunk build --release --offline` first, and Chromium with chromedriver
//! (`bash .ci/setup --browser`).

mod common;

use std::time::Duration;

use clip::Device;
use clip::load::load;
use common::browser::{Browser, ENTER};
use common::{Server, artifacts, public_dir, tiny_model_files, write_tiny_bundle};

/// Loading stages end in an ellipsis; anything else is the outcome.
fn settled(status: &str) -> bool {
    !status.is_empty() && !status.ends_with('…')
}

/// The query vector of the tiny model, computed natively.
fn native_embedding(query: &str) -> Vec<f32> {
    let files = tiny_model_files();
    let loaded = load(&files, &Device::Cpu).expect("the tiny model");
    let ids = loaded.tokenizer.encode(query).expect("tokenizing");
    loaded
        .model
        .text
        .embed(&[ids])
        .expect("embedding")
        .remove(0)
}

/// The values the page shows: `[v0, v1, …] (N values), encoded in T ms`.
fn shown_values(result: &str) -> (Vec<f32>, usize) {
    let inner = result
        .strip_prefix('[')
        .and_then(|r| r.split_once(", …]"))
        .unwrap_or_else(|| panic!("result line {result:?}"));
    let values = inner
        .0
        .split(", ")
        .map(|v| {
            v.parse()
                .unwrap_or_else(|e| panic!("{v:?} in {result:?}: {e}"))
        })
        .collect();
    let dim = inner
        .1
        .trim_start()
        .strip_prefix('(')
        .and_then(|r| r.split_once(' '))
        .and_then(|(n, _)| n.parse().ok());
    (
        values,
        dim.unwrap_or_else(|| panic!("no vector length in {result:?}")),
    )
}

/// A screenshot that is one flat colour means nothing was drawn.
fn assert_not_blank(png: &[u8]) {
    let img = image::load_from_memory(png)
        .expect("a PNG screenshot")
        .to_rgb8();
    let first = *img.get_pixel(0, 0);
    let differing = img.pixels().filter(|p| **p != first).count();
    let total = (img.width() * img.height()) as usize;
    // Text on a plain background: well under half the pixels, but far more than a stray few.
    assert!(
        differing * 1000 >= total,
        "the screenshot is (nearly) blank: {differing} of {total} pixels differ from the background"
    );
}

#[test]
fn app_loads_the_model_and_encodes_a_query() {
    let model_dir = tempfile::tempdir().expect("a temporary model directory");
    write_tiny_bundle(model_dir.path());
    let server = Server::start(public_dir(), Some(model_dir.path()));
    let browser = Browser::start();
    browser.goto(&server.url("/"));

    let heading = browser.wait_text("h1", Duration::from_secs(30), |t| !t.is_empty());
    assert_eq!(
        heading.as_deref(),
        Ok("text2img"),
        "the app did not render\nbrowser console:\n{}",
        browser.console()
    );
    let status = browser
        .wait_text("#status", Duration::from_secs(120), settled)
        .unwrap_or_else(|last| {
            panic!(
                "the model did not finish loading; status {last:?}\nbrowser console:\n{}",
                browser.console()
            )
        });
    assert!(
        status.starts_with("model ready ("),
        "status line {status:?}\nbrowser console:\n{}",
        browser.console()
    );

    let png = browser.screenshot();
    let shot = artifacts().join("home.png");
    std::fs::write(&shot, &png).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert_not_blank(&png);

    let query = "a photo of a cat";
    browser.type_into("#query", &format!("{query}{ENTER}"));
    let result = browser
        .wait_text("#result", Duration::from_secs(60), |t| !t.is_empty())
        .unwrap_or_else(|last| {
            panic!(
                "no result for the query; result line {last:?}\nbrowser console:\n{}",
                browser.console()
            )
        });
    // The encode time is worth seeing in the test log.
    eprintln!("{status}; {query:?} gave {result}");
    assert!(result.contains(" ms"), "result line {result:?}");
    let (shown, dim) = shown_values(&result);
    let native = native_embedding(query);
    assert_eq!(dim, native.len(), "vector length");
    assert_eq!(shown.len(), 8, "values shown in {result:?}");
    // The page rounds to 4 decimals; the browser's q8 file of the tiny model keeps f32 matrices.
    for (i, (s, n)) in shown.iter().zip(&native).enumerate() {
        assert!(
            (s - n).abs() <= 1e-4,
            "value {i}: browser {s}, native {n}\nresult line {result:?}"
        );
    }
}

#[test]
fn app_says_when_there_is_no_model() {
    let empty = tempfile::tempdir().expect("a temporary model directory");
    let server = Server::start(public_dir(), Some(empty.path()));
    let browser = Browser::start();
    browser.goto(&server.url("/"));

    let status = browser.wait_text("#status", Duration::from_secs(60), settled).unwrap_or_else(|last| {
        panic!("the page never said what became of the model; status {last:?}\nbrowser console:\n{}", browser.console())
    });
    assert!(
        status.starts_with("no model found"),
        "status line {status:?}"
    );
    assert!(
        status.contains("manifest.json") && status.contains("404"),
        "status line {status:?}"
    );

    browser.type_into("#query", &format!("a photo of a cat{ENTER}"));
    let result = browser.wait_text("#result", Duration::from_secs(10), |t| !t.is_empty());
    assert!(
        matches!(&result, Ok(r) if r.contains("no model")),
        "result line {result:?}"
    );
}
