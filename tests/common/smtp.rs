//! An SMTP relay for tests: accepts on 127.0.0.1, answers the commands a client sends and
//! keeps every message it accepts. A recipient whose address starts with `refused` is
//! refused permanently (550), as a real relay refuses an unknown mailbox. It stands in
//! for the operator's mail relay, an outside service, not for any part of DAGR.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message the relay accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM` path.
    pub from: String,
    /// `RCPT TO` paths.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, dot-stuffing undone).
    pub data: String,
}

/// The running relay.
pub struct SmtpSink {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// The accept loop (aborted when the relay is dropped, its sessions with it).
    _task: dagr_engine::task::SpawnedTask<()>,
}

impl SmtpSink {
    /// Start the relay on a free port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&received);
        let task = dagr_engine::task::SpawnedTask::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let store = Arc::clone(&store);
                sessions.spawn(async move {
                    let _ = session(socket, store).await;
                });
                while sessions.try_join_next().is_some() {}
            }
        });
        SmtpSink {
            addr,
            received,
            _task: task,
        }
    }

    /// The messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Wait (up to `secs`) until `pred` holds for the messages accepted.
    pub async fn wait_for(&self, secs: u64, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let now = self.received();
            if pred(&now) {
                return now;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the relay did not get the expected mail in {secs} s; it has {now:#?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

fn path(arg: &str) -> String {
    arg.trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("")
        .to_owned()
}

async fn session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let (r, mut w) = socket.into_split();
    let mut lines = BufReader::new(r);
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let mut current = Received {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            current = Received {
                from: path(&line[10..]),
                to: Vec::new(),
                data: String::new(),
            };
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let to = path(&line[8..]);
            if to.starts_with("refused") {
                b"550 5.1.1 no such mailbox\r\n"
            } else {
                current.to.push(to);
                b"250 OK\r\n"
            }
        } else if upper.starts_with("DATA") {
            w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            current.data = data;
            store.lock().unwrap().push(current.clone());
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 OK\r\n"
        };
        w.write_all(reply).await?;
    }
}
