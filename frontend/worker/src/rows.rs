//! *Where do a query's token rows come from?* The GGUF text towers leave the token embedding out
//! of their file (a third of its bytes, of which a query needs a handful of rows): each row a
//! query lacks is fetched from the bundle's token rows file with an HTTP `Range` request, all of
//! them at once, checked by length, and kept for the worker's life. Requests go through the HTTP
//! cache (the URL is content-addressed and served as immutable), so a row fetched on an earlier
//! visit costs no download.

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestInit, Response};
use wire::{TokenRows, join_url};

use crate::scope::{JsError, global};

/// Where the rows of one model come from.
#[derive(Debug, Clone)]
pub struct RowSource {
    /// The token rows file's URL, absolute.
    url: String,
    row_bytes: usize,
}

impl RowSource {
    pub fn new(api_base: &str, rows: &TokenRows) -> Self {
        RowSource {
            url: join_url(api_base, &rows.file.url),
            row_bytes: rows.row_bytes,
        }
    }

    /// Rows `ids`, in their order, each exactly `row_bytes` long. The error names the URL and the
    /// row at fault.
    pub async fn fetch(&self, ids: &[u32]) -> Result<Vec<Vec<u8>>, String> {
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
        let responses = Array::from(&responses);
        let mut rows = Vec::with_capacity(ids.len());
        for (&id, response) in ids.iter().zip(responses.iter()) {
            rows.push(self.read(id, response.unchecked_into()).await?);
        }
        Ok(rows)
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

    /// The row in `response`: a 206 of exactly one row. A server that ignores `Range` (200, the
    /// whole file) is refused without reading the body.
    async fn read(&self, id: u32, response: Response) -> Result<Vec<u8>, String> {
        let status = response.status();
        if status != 206 {
            if let Some(body) = response.body() {
                let _ = body.cancel();
            }
            let why = if status == 200 {
                "the server ignores Range requests (it sent the whole file)".to_string()
            } else {
                format!("HTTP {status}")
            };
            return Err(self.failed(id, &why));
        }
        let buffer = response
            .array_buffer()
            .map(JsFuture::from)
            .map_err(|e| self.failed(id, &JsError::from(e).to_string()))?
            .await
            .map_err(|e| self.failed(id, &JsError::from(e).to_string()))?;
        let row = Uint8Array::new(&buffer).to_vec();
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
