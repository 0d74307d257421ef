//! Sending one message to the SMTP relay with `lettre`: plain SMTP to a relay on the
//! operator's network (no TLS or authentication: the relay is the one that talks to the
//! world), each connection step under a timeout. Refusals keep the relay's answer, and
//! whether it is permanent (5xx: the message is not tried again) or transient.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};

/// Why a message was not sent.
#[derive(Debug, Clone)]
pub struct SendError {
    /// The relay's answer or the connection's error.
    pub message: String,
    /// Whether trying again cannot help (a 5xx answer, an address the message cannot
    /// carry).
    pub permanent: bool,
}

/// The relay messages go through, and the sender they come from.
#[derive(Clone)]
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Relay {
    /// The relay at `host:port`, sending as `from` (`Name <address>` or an address).
    pub fn new(relay: &str, from: &str, timeout: Duration) -> Result<Relay, String> {
        let (host, port) = relay
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| format!("the SMTP relay `{relay}` is not HOST:PORT"))?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("the sender `{from}` is not an e-mail address: {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(timeout))
            .build();
        Ok(Relay { transport, from })
    }

    /// Send one plain-text message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let to: Mailbox = to.parse().map_err(|e| SendError {
            message: format!("the address `{to}` cannot be used: {e}"),
            permanent: true,
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| SendError {
                message: format!("the message cannot be built: {e}"),
                permanent: true,
            })?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| SendError {
                permanent: e.is_permanent(),
                message: e.to_string(),
            })
    }
}
