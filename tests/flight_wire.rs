//! End to end: the zero-copy `DoGet` wire path and the cache of encoded streams, on the real
//! `dagr serve`, read with arrow-flight's tonic client as raw `FlightData` messages.

mod common;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightData, Ticket};
use common::{Server, credentials, get_auth, post_auth};
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

/// Fewer persons than one snapshot chunk: every batch is a whole chunk, which both encoders
/// cut into the same messages (arrow-flight sizes a slice by its parent's buffers).
const PERSONS: usize = 2000;

struct Node {
    _dir: tempfile::TempDir,
    server: Server,
    creds: Value,
}

fn start(extra: &[&str]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, PERSONS, extra);
    let creds = credentials(&data);
    Node {
        _dir: dir,
        server,
        creds,
    }
}

/// One `DoGet` as raw messages, with the response headers; or the refusal.
async fn pull(
    node: &Node,
    token: &str,
    ticket: Value,
) -> Result<(MetadataMap, Vec<FlightData>), tonic::Status> {
    let channel = Channel::from_shared(node.server.flight.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let mut request = tonic::Request::new(Ticket::new(ticket.to_string()));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .metadata_mut()
        .insert("x-dagr-purpose", "adrešu statistika".parse().unwrap());
    let response = client.do_get(request).await?;
    let headers = response.metadata().clone();
    let mut stream = response.into_inner();
    let mut messages = vec![];
    while let Some(m) = stream.message().await? {
        messages.push(m);
    }
    Ok((headers, messages))
}

/// The access records of `persons` the owner sees that name `organisation`.
async fn records_of(base: &str, owner: &str, organisation: &str) -> usize {
    let csv = common::persons_usage_csv(base, owner).await;
    csv.lines()
        .filter(|l| l.contains(&format!(",{organisation},")))
        .count()
}

fn header<'a>(headers: &'a MetadataMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_path_sends_the_bytes_tonic_sent_masked_cells_included() {
    let wire = start(&[]);
    let tonic = start(&["--flight-no-zero-copy", "--flight-cache-mb", "0"]);
    let mut received = vec![];
    for node in [&wire, &tonic] {
        // Rīga reads all of its rows and, through a second agreement, other rows with some
        // cells hidden: masked columns are new arrays, the others the snapshot's own.
        let riga = common::second_riga_agreement(&node.server, &node.creds).await;
        let (_, messages) = pull(node, &riga, json!({"dataset": "persons"}))
            .await
            .unwrap();
        received.push(messages);
    }
    let (ours, theirs) = (&received[0], &received[1]);
    assert!(
        ours.len() >= 2,
        "a schema and batches: {} messages",
        ours.len()
    );
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a.data_header, b.data_header, "header of message {i}");
        assert_eq!(a.data_body, b.data_body, "body of message {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_pull_comes_from_the_cache_and_a_revoked_agreement_ends_it() {
    let mut node = start(&[]);
    let base = node.server.base.clone();
    let riga = common::system_token(&node.creds, "RIGA", "consumer");
    let owner = common::system_token(&node.creds, "PMLP", "provider");
    let whole = json!({"dataset": "persons"});

    let before = records_of(&base, &owner, "RIGA").await;
    let (first, sent) = pull(&node, &riga, whole.clone()).await.unwrap();
    assert_eq!(header(&first, "x-dagr-cache"), Some("miss"));
    let (second, again) = pull(&node, &riga, whole.clone()).await.unwrap();
    assert_eq!(header(&second, "x-dagr-cache"), Some("hit"));
    assert_eq!(sent, again, "the same messages");
    assert_eq!(
        header(&first, "x-dagr-mask"),
        header(&second, "x-dagr-mask")
    );

    // Another projection is another stream.
    let (other, _) = pull(
        &node,
        &riga,
        json!({"dataset": "persons", "columns": ["personal_code"]}),
    )
    .await
    .unwrap();
    assert_eq!(header(&other, "x-dagr-cache"), Some("miss"));

    // Each pull, hit or not, is recorded: the owner sees three more of Rīga's reads.
    assert_eq!(records_of(&base, &owner, "RIGA").await, before + 3);

    // Revoked: refused at once, cache or not.
    let (_, _, agreements) = get_auth(&format!("{base}/api/v1/agreements"), &riga).await;
    for a in agreements.as_array().unwrap() {
        if a["dataset"] == "persons" && a["status"] == "active" {
            let (status, _, body) = post_auth(
                &format!("{base}/api/v1/agreements/{}/revoke", a["id"]),
                &owner,
                &json!({"reason": "end of test"}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let refused = pull(&node, &riga, whole).await.unwrap_err();
    assert!(
        matches!(refused.code(), Code::PermissionDenied | Code::NotFound),
        "{refused:?}"
    );
    // And the streams it cut leave the server's memory (the sweep runs every second).
    let line = node.server.wait_for("dropped cached streams");
    assert!(line.contains("streams=2"), "{line}");
}
