//! The end-to-end test package. It has no library code of its own: the tests live in `tests/`
//! (one binary per area, e.g. `browser.rs`) and take their helpers (paths, the fixture model
//! bundle, the in-process proxy, the WebDriver client) from the workspace's `testkit` crate.
