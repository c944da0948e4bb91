//! A webhook receiver for tests: axum on a free loopback port, on a
//! runtime of its own (so it answers whatever the test's runtime is doing,
//! `tokio::time::pause()` included), recording every request's method,
//! path, headers and raw body, and answering from a script of statuses.
//!
//! ```ignore
//! let receiver = Receiver::start(&[500, 200]); // then 200 for ever
//! let url = receiver.url("/hook");
//! // ... something POSTs to url ...
//! let hits = receiver.wait_for(2, Duration::from_secs(10)).await;
//! hearth::escalate::webhook::verify(secret, hits[1].header(TIMESTAMP_HEADER), ...)
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
    /// Header names lowercased; a repeated header's values joined by `, `.
    pub headers: BTreeMap<String, String>,
    /// The body, byte for byte (what a signature is checked over).
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Hit {
    /// A header's value by name, any case.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    hits: Mutex<Vec<Hit>>,
    script: Mutex<VecDeque<u16>>,
}

pub(crate) struct Receiver {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// Starts answering: the i-th request gets `statuses[i]`, and every
    /// request after the script runs out gets 200.
    pub(crate) fn start(statuses: &[u16]) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            hits: Mutex::default(),
            script: Mutex::new(statuses.iter().copied().collect()),
        });
        let state = shared.clone();
        let router = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    let mut map: BTreeMap<String, String> = BTreeMap::new();
                    for (name, value) in &headers {
                        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                        map.entry(name.as_str().to_owned())
                            .and_modify(|v| {
                                v.push_str(", ");
                                v.push_str(&value);
                            })
                            .or_insert(value);
                    }
                    state.hits.lock().unwrap().push(Hit {
                        method: method.to_string(),
                        path: uri
                            .path_and_query()
                            .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
                        headers: map,
                        body: body.to_vec(),
                        status,
                    });
                    (
                        axum::http::StatusCode::from_u16(status).expect("a valid status"),
                        "",
                    )
                }
            },
        );
        // Bound here, served there: `block_on` would panic when the
        // caller is itself on a runtime.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap()
        });
        Receiver {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT` + `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived and returns them all;
    /// panics with what did arrive after `deadline` of real time.
    pub(crate) async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Hit> {
        let until = Instant::now() + deadline;
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < until,
                "expected {n} webhook request(s) within {deadline:?}, got {}: {hits:#?}",
                hits.len()
            );
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10)))
                .await
                .unwrap();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Dropping a runtime inside another's async context would panic.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
