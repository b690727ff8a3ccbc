//! How a test talks HTTP to a server: blocking requests that never follow redirects and never
//! turn an error status into an `Err`, answered as an [`Answer`] (status, headers, body) with
//! helpers for JSON bodies and the API's error codes.

use serde_json::Value;

/// An HTTP answer: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error code of a JSON error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(std::time::Duration::from_secs(60))
        .build()
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_string();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| response.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("reading the body");
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

/// `GET url` with `headers`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (k, v) in headers {
        request = request.set(k, v);
    }
    answer(request.call())
}

/// `POST url` with `body` as `application/json` (sent as given, valid or not).
pub fn post(url: &str, body: &str) -> Answer {
    answer(
        agent()
            .post(url)
            .set("Content-Type", "application/json")
            .send_string(body),
    )
}

/// `POST url` with a JSON value.
pub fn post_json(url: &str, body: &Value) -> Answer {
    post(url, &body.to_string())
}

/// `POST url` with `body` as `application/json` and `headers`.
pub fn post_with(url: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().post(url).set("Content-Type", "application/json");
    for (k, v) in headers {
        request = request.set(k, v);
    }
    answer(request.send_string(body))
}

/// `GET path` from `addr` (`host:port`) over HTTP/1.0 written by hand, with `Accept-Encoding:
/// accepts`: the headers (names in lower case) and the body exactly as sent. The other helpers'
/// client decompresses bodies and drops `Content-Encoding`; this one shows the wire.
pub fn raw_get(addr: &str, path: &str, accepts: &str) -> (Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept-Encoding: {accepts}\r\n\r\n"
    )
    .expect("request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the end of the headers");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (headers, answer[split + 4..].to_vec())
}

/// The `(id, score)` ranking a search endpoint answers `body` with; panics on an error answer.
pub fn ranking(url: &str, body: &Value) -> Vec<(String, f32)> {
    let answer = post_json(url, body);
    assert_eq!(answer.status, 200, "{body}: {}", answer.text());
    answer.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| {
            let id = h["id"].as_str().expect("id").to_string();
            (id, h["score"].as_f64().expect("score") as f32)
        })
        .collect()
}
