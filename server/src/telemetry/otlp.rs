//! The OTLP/HTTP exporter (protobuf). The endpoint, headers (Langfuse's `Authorization`),
//! timeout and compression come from the standard `OTEL_EXPORTER_OTLP_*` variables, read by
//! `opentelemetry-otlp`. Its requests go through the `reqwest` client Factory already links,
//! on the Tokio runtime (the batch processor's own thread only waits for them).

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::RunIds;

/// The most of an OTLP response read (they are small status messages).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Sends over `reqwest` on the runtime that made it.
#[derive(Debug)]
struct Sender {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Sender {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            let mut out = http::Response::new(Bytes::from(body));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, HttpError>(out)
        });
        sent.await?
    }
}

/// A tracer provider exporting in batches to `traces_url` (the whole URL, `…/v1/traces`) or,
/// without one, to the endpoint the `OTEL_EXPORTER_OTLP_*` variables name; the service is named
/// `factory` unless `OTEL_SERVICE_NAME` says otherwise. Must be called inside the Tokio runtime.
pub fn provider(traces_url: Option<&str>) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "traces need the Tokio runtime".to_string())?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("the OTLP HTTP client could not be built: {e}"))?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(Sender { client, runtime });
    if let Some(url) = traces_url {
        exporter = exporter.with_endpoint(url);
    }
    let exporter = exporter
        .build()
        .map_err(|e| format!("the OTLP exporter could not be built: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "factory".to_string()),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(RunIds::default())
        .with_resource(resource)
        .build())
}
