//! *Where do a query's token rows come from?* The GGUF text towers leave the token embedding out
//! of their file (a third of its bytes, of which a query needs a handful of rows): each row a
//! query lacks is fetched from the bundle's token rows file with an HTTP `Range` request, all of
//! them at once, checked by length, and kept for the worker's life. Requests go through the HTTP
//! cache (the URL is content-addressed and served as immutable), so a row fetched on an earlier
//! visit costs no download. A host that ignores `Range` answers with the whole file: it is taken
//! once, checked against the manifest's size and sha256, and no row is fetched again.

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestInit, Response};
use wire::{FileRef, TokenRows, join_url};

use crate::scope::{JsError, global};

/// Where the rows of one model come from.
#[derive(Debug, Clone)]
pub struct RowSource {
    /// The token rows file's URL, absolute.
    url: String,
    file: FileRef,
    row_bytes: usize,
}

/// What a fetch brought.
#[derive(Debug)]
pub enum Arrived {
    /// The rows asked for, in their order, each `row_bytes` long.
    Rows(Vec<Vec<u8>>),
    /// The whole file (the host ignored `Range`), its size and sha256 checked.
    Whole(Vec<u8>),
}

impl RowSource {
    pub fn new(api_base: &str, rows: &TokenRows) -> Self {
        RowSource {
            url: join_url(api_base, &rows.file.url),
            file: rows.file.clone(),
            row_bytes: rows.row_bytes,
        }
    }

    /// Rows `ids`. The error names the URL and the row at fault.
    pub async fn fetch(&self, ids: &[u32]) -> Result<Arrived, String> {
        let requests = Array::new();
        for &id in ids {
            let request = self
                .request(id)
                .map_err(|e| self.failed(id, &e.to_string()))?;
            requests.push(&request);
        }
        let responses = JsFuture::from(Promise::all(&requests)).await.map_err(|e| {
            format!(
                "cannot download token rows from {}: {}",
                self.url,
                JsError::from(e)
            )
        })?;
        let responses: Vec<Response> = Array::from(&responses)
            .iter()
            .map(JsCast::unchecked_into)
            .collect();
        // A host that ignores `Range` sends the whole file to each request: one is enough.
        if let Some(whole) = responses.iter().position(|r| r.status() == 200) {
            for (i, response) in responses.iter().enumerate() {
                if i != whole {
                    cancel(response);
                }
            }
            return self.whole(&responses[whole]).await.map(Arrived::Whole);
        }
        let mut rows = Vec::with_capacity(ids.len());
        for (&id, response) in ids.iter().zip(responses) {
            rows.push(self.read(id, response).await?);
        }
        Ok(Arrived::Rows(rows))
    }

    /// The whole file in `response`, checked against the manifest.
    async fn whole(&self, response: &Response) -> Result<Vec<u8>, String> {
        let failed = |why: String| format!("cannot download {}: {why}", self.url);
        let bytes = body(response).await.map_err(|e| failed(e.to_string()))?;
        if bytes.len() as u64 != self.file.bytes {
            return Err(failed(format!(
                "{} bytes, expected {} (the download broke off?)",
                bytes.len(),
                self.file.bytes
            )));
        }
        let sha = clip::export::sha256_hex(&bytes);
        if sha != self.file.sha256 {
            return Err(failed(format!(
                "sha256 {sha}, expected {}",
                self.file.sha256
            )));
        }
        Ok(bytes)
    }

    /// `GET url` with `Range: bytes=a-b` for row `id`.
    fn request(&self, id: u32) -> Result<Promise, JsError> {
        let start = id as usize * self.row_bytes;
        let headers = Headers::new()?;
        headers.set(
            "Range",
            &format!("bytes={start}-{}", start + self.row_bytes - 1),
        )?;
        let init = RequestInit::new();
        init.set_headers(&headers);
        Ok(global().fetch_with_str_and_init(&self.url, &init))
    }

    /// The row in `response`: a 206 of exactly one row.
    async fn read(&self, id: u32, response: Response) -> Result<Vec<u8>, String> {
        let status = response.status();
        if status != 206 {
            cancel(&response);
            return Err(self.failed(id, &format!("HTTP {status}")));
        }
        let row = body(&response)
            .await
            .map_err(|e| self.failed(id, &e.to_string()))?;
        if row.len() != self.row_bytes {
            return Err(self.failed(
                id,
                &format!("{} bytes, expected {}", row.len(), self.row_bytes),
            ));
        }
        Ok(row)
    }

    fn failed(&self, id: u32, why: &str) -> String {
        format!("cannot download token row {id} from {}: {why}", self.url)
    }
}

/// The whole body of `response`.
async fn body(response: &Response) -> Result<Vec<u8>, JsError> {
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Stops reading a body nobody needs.
fn cancel(response: &Response) {
    if let Some(body) = response.body() {
        let _ = body.cancel();
    }
}
