//! What the test suites share. The proxy's integration tests (`proxy/tests/`) and the
//! end-to-end tests (`tests/`) take their fixtures, servers, clients and child processes from
//! here, so that there is one way to do each:
//!
//! - [`paths`]: where is the workspace, the fixture model, the built site?
//! - [`model`]: which model do the tests run, and what does its browser bundle look like?
//! - [`server`]: how does a test get a proxy serving on a local port (and its app state)?
//! - [`points`]: how does a test fill a store with points it names?
//! - [`http`]: how does a test send a request and look at the answer?
//! - [`process`]: how does a test start a child process that sees none of the developer's
//!   settings?
//! - [`qdrant`]: how does a test reach a Qdrant server, or a port where none listens?
//! - [`skip`]: how does a test that cannot run say so, where CI will find it?
//! - [`browser`]: how does a test drive a headless Chromium?
//! - [`app_page`]: what does a browser test read from the search page, served how?
//! - [`page_checks`]: what must every page a browser opens pass (drawn, images loaded,
//!   accessible)?

pub mod app_page;
pub mod browser;
pub mod http;
pub mod model;
pub mod page_checks;
pub mod paths;
pub mod points;
pub mod process;
pub mod qdrant;
pub mod server;
pub mod skip;

pub use http::{Answer, get, post, post_json, post_with, ranking};
pub use model::{tiny_model, tiny_model_files, tiny_spec, write_tiny_bundle};
pub use paths::{artifacts, public_dir, tiny_model_dir, workspace};
pub use process::{PROJECT_ENV, command, free_port};
pub use server::{Server, ServerOptions, TestServer, app_state, public_stub};
pub use skip::skip;
