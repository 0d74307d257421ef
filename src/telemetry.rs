//! Logging and tracing of the process: log lines to stderr (human-readable or JSON), filtered
//! by `DAGR_LOG`; each request's span names its trace id ([`dagr_engine::trace`]); and, when
//! `dagr serve --otlp-endpoint` is set, the spans exported to an OpenTelemetry collector over
//! OTLP/gRPC (TLS for an `https://` endpoint, trusting the system's certificate authorities
//! or `SSL_CERT_FILE`). The serve configuration (flags, the environment, the configuration
//! file) is resolved before logging starts, so spans are exported from the first one.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing_subscriber::layer::{Layered, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

use crate::cli::LogFormat;

type Filtered = Layered<EnvFilter, Registry>;

/// The layer that turns spans into OpenTelemetry spans for the exporter.
pub type OtelLayer = tracing_opentelemetry::OpenTelemetryLayer<Filtered, Tracer>;

/// The exporting provider, kept to flush it at exit ([`shutdown`]).
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// How long one export to the collector may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Log to stderr in `format`, at the levels `DAGR_LOG` sets (`info` by default), and export
/// spans through `otel` when given ([`export_spans`]).
pub fn init_logging(format: LogFormat, otel: Option<OtelLayer>) {
    let filter = EnvFilter::try_from_env("DAGR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Human => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(fmt)
        .try_init();
}

/// The layer exporting spans to the collector at `endpoint` (OTLP over gRPC), in batches,
/// until [`shutdown`]. Must run inside the Tokio runtime (the gRPC channel lives on it).
pub fn export_spans(endpoint: &str) -> anyhow::Result<OtelLayer> {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT);
    if endpoint.starts_with("https://") {
        // The system's certificate authorities (or SSL_CERT_FILE), as the Flight client does.
        builder =
            builder.with_tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots());
    }
    let exporter = builder
        .build()
        .with_context(|| format!("setting up the OTLP exporter to {endpoint}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("dagr")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("dagr"));
    let _ = PROVIDER.set(provider);
    Ok(layer)
}

/// Send the spans still buffered to the collector (bounded by the export timeout); nothing
/// when spans are not exported.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

/// Check an `--otlp-endpoint` value: an `http://` or `https://` URL with a host.
pub fn parse_endpoint(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(
            "use http://HOST:PORT or https://HOST:PORT (OTLP over gRPC, usually port 4317)".into(),
        );
    }
    Ok(value.to_owned())
}
