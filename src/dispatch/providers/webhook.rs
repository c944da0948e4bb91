//! The webhook provider: POSTs each message as JSON to a URL the clinic
//! runs (its own gateway, a paging system), signed with HMAC-SHA256.
//!
//! Headers: `X-Hearth-Timestamp` (Unix seconds) and
//! `X-Hearth-Signature: sha256=HEX`, the HMAC of `TIMESTAMP.BODY` keyed by
//! the shared signing key, so a receiver can reject forgeries and replays.
//! A 2xx answer is acceptance; a JSON `{"id": "…"}` in it is kept as the
//! provider's message id.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::dispatch::provider::{
    Accepted, Outgoing, Provider, SendError, SetupError, classify_http, classify_transport,
    http_client,
};

pub struct WebhookProvider {
    url: String,
    key: SecretString,
    client: reqwest::Client,
}

impl WebhookProvider {
    pub fn new(
        url: &str,
        key: SecretString,
        timeout: std::time::Duration,
    ) -> Result<WebhookProvider, SetupError> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(SetupError::WebhookUrl(url.to_owned()));
        }
        Ok(WebhookProvider {
            url: url.to_owned(),
            key,
            client: http_client(timeout)?,
        })
    }
}

/// `sha256=HEX` of `TIMESTAMP.BODY`.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Provider for WebhookProvider {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, msg: &Outgoing) -> Result<Accepted, SendError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "id": msg.outbox_id,
            "member_id": msg.member_id,
            "to": msg.to.as_str(),
            "body": msg.body,
            "segments": msg.segments,
        }))
        .map_err(|e| SendError::permanent(format!("cannot encode: {e}")))?;
        let ts = chrono::Utc::now().timestamp();
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-hearth-timestamp", ts.to_string())
            .header(
                "x-hearth-signature",
                signature(self.key.expose_secret().as_bytes(), ts, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = resp.status();
        if status.is_success() {
            let id = resp.json::<serde_json::Value>().await.ok().and_then(|v| {
                v.get("id").map(|id| {
                    id.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| id.to_string())
                })
            });
            return Ok(Accepted {
                provider_message_id: id,
            });
        }
        let retry_after = resp.headers().get("retry-after").cloned();
        Err(classify_http(status, retry_after.as_ref(), ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature(b"key", 1_700_000_000, br#"{"a":1}"#),
            "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }
}
