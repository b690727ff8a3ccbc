//! How a test drives a browser: a headless Chromium over WebDriver (chromedriver, plain HTTP on
//! localhost), enough to open a page, read text, type, click and take a screenshot, plus one
//! DevTools call. Each [`Browser`] has its own chromedriver (started through
//! [`crate::command`], so with a clean environment), browser profile and session, and ends all
//! three when dropped. Only the browser tests and the browser benchmark (`tests/`) use it; it
//! lives here so that every child process a test starts goes through one helper.
//!
//! A missing browser fails the test with the command that installs it: a browser test that
//! silently passes without a browser would prove nothing.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::process::{command, free_port};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The WebDriver key code of Enter.
pub const ENTER: char = '\u{E007}';
/// The WebDriver key code of the right arrow.
pub const ARROW_RIGHT: char = '\u{E014}';

/// The first of `names` found on `PATH`.
fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn require(names: &[&str]) -> PathBuf {
    find_on_path(names).unwrap_or_else(|| {
        panic!("none of {names:?} is on PATH; the browser tests need Chromium and chromedriver: run `bash .ci/setup --browser`")
    })
}

#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    // Kept until the browser is gone: Chromium writes its profile here.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile and a 1200x800 window.
    pub fn start() -> Self {
        let chromium = require(&["chromium", "chromium-browser", "google-chrome"]);
        let chromedriver = require(&["chromedriver"]);
        let profile = tempfile::tempdir().expect("a temporary browser profile");
        let port = free_port();
        // chromedriver takes a port number, not a bound socket.
        let driver = command(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
            _profile: profile,
        };
        browser.wait_for_driver();
        let args = [
            "--headless",
            // The tests run as root in containers, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            // No calls home: the test machine may have no network, and they only add noise.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,800",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let answer = browser
            .call("POST", "/session", Some(caps))
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromium.display()));
        browser.session = answer["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser
    }

    fn wait_for_driver(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(status) = self.call("GET", "/status", None)
                && status["ready"].as_bool() == Some(true)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer at {} within 30 s",
                self.base
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver command; the answer's `value`, or the driver's error message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let request = self.agent.request(method, &format!("{}{path}", self.base));
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let read = |r: ureq::Response| {
            r.into_json::<Value>()
                .map_err(|e| format!("{method} {path}: unreadable answer: {e}"))
        };
        match response {
            Ok(r) => Ok(read(r)?["value"].take()),
            Err(ureq::Error::Status(code, r)) => {
                let answer = read(r)?;
                Err(format!(
                    "{method} {path}: HTTP {code}: {}",
                    answer["value"]["message"].as_str().unwrap_or("no message")
                ))
            }
            Err(e) => Err(format!("{method} {path}: {e}")),
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens `url` and waits for the document to load (not for the app's downloads).
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; its return value.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs `script` that calls `arguments[arguments.length - 1]` with its result, when it has one.
    pub fn eval_async(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Every page opened from now on runs without Web Workers (`window.Worker` removed before
    /// its scripts), as a browser that has none.
    pub fn without_workers(&self) {
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "delete window.Worker;"}),
        );
    }

    /// A Chrome DevTools Protocol command (chromedriver's extension of WebDriver).
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.session_call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    /// How long `eval_async` scripts may run.
    pub fn set_script_timeout(&self, timeout: Duration) {
        self.session_call(
            "POST",
            "/timeouts",
            Some(json!({"script": timeout.as_millis() as u64})),
        );
    }

    /// Resizes the window (CSS pixels).
    pub fn set_window(&self, width: u32, height: u32) {
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// The text of the first element matching `css`, or `None` while there is none.
    pub fn text(&self, css: &str) -> Option<String> {
        let script =
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;";
        self.eval(script, json!([css])).as_str().map(str::to_string)
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        let script = "return document.querySelectorAll(arguments[0]).length;";
        self.eval(script, json!([css])).as_u64().unwrap_or(0) as usize
    }

    /// The attribute `name` of the first element matching `css`.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;";
        self.eval(script, json!([css, name]))
            .as_str()
            .map(str::to_string)
    }

    /// The WebDriver reference of the first element matching `css`, waiting up to 10 s for it: a
    /// page's app renders its elements after the document's load event (once its wasm is
    /// compiled), and a test that types or clicks at once must not race it.
    fn find(&self, css: &str) -> String {
        let query = json!({"using": "css selector", "value": css});
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = format!("/session/{}/element", self.session);
            match self.call("POST", &path, Some(query.clone())) {
                Ok(found) => {
                    return found[ELEMENT_KEY]
                        .as_str()
                        .unwrap_or_else(|| panic!("no element {css}"))
                        .to_string();
                }
                Err(e) if Instant::now() >= deadline || !e.contains("no such element") => {
                    panic!("{e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Clicks the first element matching `css`, as a user would (scrolled into view).
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.session_call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Polls until `ready` (a script returning true when done) holds; false on timeout.
    pub fn wait_for(&self, ready: &str, args: Value, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(ready, args.clone()).as_bool() == Some(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the text of `css` until `done` accepts it; the last text seen (or `None`) on timeout.
    pub fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, Option<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text(css);
            if let Some(t) = &text
                && done(t)
            {
                return Ok(t.clone());
            }
            if Instant::now() >= deadline {
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `keys` into the first element matching `css`, as key presses.
    pub fn type_into(&self, css: &str, keys: &str) {
        let id = self.find(css);
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": keys})),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.session_call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 screenshot"))
            .expect("valid base64")
    }

    /// The page's console messages so far, one a line (for failure messages).
    pub fn console(&self) -> String {
        // chromedriver's log endpoint is an extension of WebDriver; a failure here must not hide
        // the failure being reported.
        match self.call(
            "POST",
            &format!("/session/{}/se/log", self.session),
            Some(json!({"type": "browser"})),
        ) {
            Ok(Value::Array(entries)) => entries
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["level"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Ok(other) => format!("(unexpected log answer {other})"),
            Err(e) => format!("(no browser log: {e})"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then the driver goes. Errors are moot by now.
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
