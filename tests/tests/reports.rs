//! The HTML reports in a real browser: the demo collection ingested with the tiny model, `proxy
//! eval`'s report.html and `proxy report`'s page written by the library functions the commands
//! call, then opened in headless Chromium — served by the proxy at `/admin/eval/` and
//! `/admin/report/` (HTTP Basic, the admin token as the password, sent by the browser from the
//! URL's credentials) and the eval report from disk. Each page draws something (screenshots in
//! `tests/artifacts/`), every image loads, no script runs, and the accessibility check passes.
//!
//! Needs Chromium with chromedriver (`bash .ci/setup --browser`); not the trunk build.

use std::path::Path;

use proxy::eval::{evaluate, html, judgments, read_queries, report};
use proxy::http::AppState;
use proxy::report::Options;
use serde_json::json;
use testkit::browser::Browser;
use testkit::page_checks::{assert_accessible, assert_images_loaded, assert_not_blank};
use testkit::{Server, ServerOptions, artifacts, public_stub, workspace};

const TOKEN: &str = "reports-admin";

/// Write eval's reports (default folder) and `proxy report`'s page for the served collection.
fn write_reports(state: &AppState) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tsv = read_queries(&workspace().join("data/queries.tsv")).expect("demo queries");
    let (judged, skipped) = judgments(&tsv, &[]);
    let encoder = state.encoder.clone().expect("a text encoder");
    let store = state.store.as_ref();
    let vectors = proxy::eval::embed_queries(&judged, encoder.as_ref()).expect("query vectors");
    let result = rt
        .block_on(evaluate(
            &judged,
            skipped,
            &vectors,
            store,
            proxy::retrieve::Retrieval::image(),
        ))
        .expect("eval");
    let out = state.data.eval_reports();
    let title = "text2img eval: the demo collection";
    report::write(&out, title, &result).expect("report.md");
    let (worst, best) = rt
        .block_on(html::gather(
            &result,
            &judged,
            encoder.as_ref(),
            store,
            &state.data.thumbs(),
        ))
        .expect("gather");
    html::write(
        &out,
        &html::render(title, &result, &worst, &best).expect("render"),
    )
    .expect("report.html");
    rt.block_on(proxy::report::write(
        store,
        &state.data,
        "text2img: the demo collection",
        &Options::default(),
    ))
    .expect("proxy report");
}

/// The page now open: drawn, every image loaded (returns how many), no script, accessible.
fn check_page(browser: &Browser, screenshot: &str) -> usize {
    let title = browser.eval("return document.title;", json!([]));
    assert!(
        title.as_str().is_some_and(|t| t.starts_with("text2img")),
        "not the report (a login or error page?): {title} {:?}",
        browser.text("body")
    );
    assert_eq!(browser.count("script"), 0, "the reports need no script");
    let images = assert_images_loaded(browser);
    assert_accessible(browser);
    let png = browser.screenshot();
    let path = artifacts().join(screenshot);
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_not_blank(&png);
    images
}

#[test]
fn the_html_reports_render_in_a_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::with(
        public_stub(dir.path()),
        &ServerOptions {
            demo_data: true,
            admin_token: Some(TOKEN),
            ..ServerOptions::default()
        },
    );
    let state = server.state();
    write_reports(state);

    let browser = Browser::start();
    browser.set_window(1280, 1600);
    let authed = |path: &str| {
        server
            .url(path)
            .replacen("http://", &format!("http://admin:{TOKEN}@"), 1)
    };

    // proxy report, served: four charts, the near-duplicate and outlier thumbnails.
    browser.goto(&authed("/admin/report/"));
    let images = check_page(&browser, "report-collection.png");
    assert!(images >= 1, "thumbnails of near-duplicates or outliers");
    assert_eq!(browser.count("svg[role=img]"), 4);
    assert!(browser.count("table") >= 6);

    // eval, served: the recall curve, ten results per shown query, relevant ones marked.
    browser.goto(&authed("/admin/eval/"));
    let images = check_page(&browser, "report-eval.png");
    let articles = browser.count("article");
    assert!(articles >= 2, "worst and best queries shown");
    assert!(
        images >= 10 * articles,
        "{images} images for {articles} queries"
    );
    assert!(browser.count(".tiles li.relevant") >= 1);
    assert_eq!(
        browser.count(".tiles li.relevant"),
        browser.count(".tiles li.relevant img[alt$=', relevant']"),
        "every marked tile says so in its alt text"
    );

    // eval, opened from disk: the same page, its images inline.
    let file = state.data.eval_html();
    assert!(Path::new(&file).is_file());
    browser.goto(&format!("file://{}", file.display()));
    assert_eq!(check_page(&browser, "report-eval-file.png"), images);
}
