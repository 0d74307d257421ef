//! The connection to a DAGR server's Flight service: bearer token, declared purpose, and
//! retries with backoff on transient network errors.

use std::future::Future;
use std::time::Duration;

use arrow_flight::FlightClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::{LoadError, Result};

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The Flight URL, e.g. `http://127.0.0.1:50051` (`https://` for TLS).
    pub server: String,
    /// The bearer token.
    pub token: String,
    /// The declared purpose of use (needed to read personal attributes).
    pub purpose: Option<String>,
    /// Attempts after the first on transient errors.
    pub retries: u32,
    /// First backoff; doubled per attempt up to [`MAX_BACKOFF`].
    pub backoff: Duration,
}

/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Connection {
    /// A connection with 5 retries starting at 500 ms.
    pub fn new(server: impl Into<String>, token: impl Into<String>) -> Self {
        Connection {
            server: server.into(),
            token: token.into(),
            purpose: None,
            retries: 5,
            backoff: Duration::from_millis(500),
        }
    }

    /// The same connection declaring `purpose`.
    pub fn with_purpose(mut self, purpose: Option<String>) -> Self {
        self.purpose = purpose;
        self
    }

    /// A connected client with the token and purpose headers set.
    pub async fn client(&self) -> Result<FlightClient> {
        let endpoint = Endpoint::from_shared(self.server.clone())
            .map_err(|e| LoadError::Usage(format!("invalid server URL `{}`: {e}", self.server)))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .initial_stream_window_size(16 << 20)
            .initial_connection_window_size(32 << 20)
            // Frames of up to 1 MiB from the server (h2's default is 16 KiB).
            .max_frame_size(dagr_flight_server::CLIENT_MAX_FRAME_SIZE);
        let endpoint = if self.server.starts_with("https://") {
            endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())
                .map_err(|e| LoadError::Usage(format!("TLS: {e}")))?
        } else {
            endpoint
        };
        let channel: Channel = endpoint.connect().await.map_err(|e| {
            LoadError::Transient(format!(
                "cannot connect to {}: {}",
                self.server,
                source_chain(&e)
            ))
        })?;
        let mut client = FlightClient::new(channel);
        client
            .add_header("authorization", &format!("Bearer {}", self.token))
            .map_err(|_| LoadError::Usage("the token is not valid header text".into()))?;
        if let Some(p) = &self.purpose {
            client
                .add_header(dagr_engine::audit::PURPOSE_HEADER, &percent_encode(p))
                .map_err(|_| LoadError::Usage("the purpose is not valid header text".into()))?;
        }
        Ok(client)
    }

    /// Run `attempt` until it succeeds, fails for good, or the retries are spent; transient
    /// failures are retried after a growing pause, reported on stderr.
    pub async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut wait = self.backoff;
        let mut n = 0;
        loop {
            match attempt(n).await {
                Err(LoadError::Transient(reason)) if n < self.retries => {
                    n += 1;
                    eprintln!(
                        "{what}: {reason}; retry {n} of {} in {:.1} s",
                        self.retries,
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                other => return other,
            }
        }
    }
}

/// Percent-encode what gRPC's ASCII metadata cannot carry (the server decodes it).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error with its causes, for messages.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

/// A Flight error as a connector error: network trouble is transient (retried), anything
/// the server decided is final.
pub fn flight_error(e: arrow_flight::error::FlightError) -> LoadError {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => status_error(&s),
        other => LoadError::Server(other.to_string()),
    }
}

/// A gRPC status as a connector error.
pub fn status_error(s: &tonic::Status) -> LoadError {
    use tonic::Code;
    let msg = s.message().to_owned();
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded => {
            LoadError::Transient(format!("{msg} ({:?})", s.code()))
        }
        // Transport failures (a reset connection) surface as Unknown or Internal with a
        // transport source.
        Code::Unknown | Code::Internal
            if msg.contains("transport")
                || msg.contains("h2 protocol")
                || msg.contains("connection") =>
        {
            LoadError::Transient(msg)
        }
        _ => LoadError::Server(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_are_percent_encoded_for_grpc_metadata() {
        assert_eq!(percent_encode("kredīts 5%"), "kred%C4%ABts 5%25");
        assert_eq!(
            dagr_engine::audit::purpose_text(percent_encode("kredīts 5%").as_bytes()).unwrap(),
            "kredīts 5%"
        );
    }

    #[tokio::test]
    async fn transient_errors_are_retried_then_given_up() {
        let mut c = Connection::new("http://127.0.0.1:1", "t");
        c.retries = 2;
        c.backoff = Duration::from_millis(1);
        let mut calls = 0;
        let r: Result<()> = c
            .retrying("test", |_| {
                calls += 1;
                async { Err(LoadError::Transient("down".into())) }
            })
            .await;
        assert!(matches!(r, Err(LoadError::Transient(_))));
        assert_eq!(calls, 3);
        let mut calls = 0;
        let r: Result<()> = c
            .retrying("test", |_| {
                calls += 1;
                async { Err(LoadError::Server("refused".into())) }
            })
            .await;
        assert!(matches!(r, Err(LoadError::Server(_))));
        assert_eq!(calls, 1);
    }
}
