//! Unit tests of the store's pure parts.

use super::*;

#[test]
fn powers_of_two() {
    assert_eq!(prev_power_of_two(0), 1);
    assert_eq!(prev_power_of_two(1), 1);
    assert_eq!(prev_power_of_two(3), 2);
    assert_eq!(prev_power_of_two(256), 256);
    assert_eq!(prev_power_of_two(1000), 512);
}

#[test]
fn body_is_canonical_and_round_trips() {
    let b = Body {
        v: 1,
        seq: 7,
        kind: "access".into(),
        time: 1,
        recorded: 2,
        role: Some("consumer".into()),
        organisation: Some("BANK".into()),
        system: Some("3".into()),
        user: None,
        token: Some("9".into()),
        purpose: Some("credit \"check\"".into()),
        channel: Some("rest".into()),
        dataset: Some("people".into()),
        version: Some(1),
        attributes: vec!["given_name".into()],
        agreements: vec!["4".into()],
        request_id: Some("r".into()),
        query_sha256: Some(sha256_hex("q")),
        rows: 1,
        subject_count: 1,
        subjects: Some(vec!["P00001".into()]),
        subjects_sha256: None,
        dict_id: None,
        dict_hash: None,
        reporter: None,
        transaction_id: None,
        access_record: None,
    };
    let text = b.canonical();
    assert!(
        text.starts_with(r#"{"v":1,"seq":7,"kind":"access""#),
        "{text}"
    );
    let back: Body = serde_json::from_str(&text).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.canonical(), text);
    assert_eq!(chain_hash(GENESIS_HASH, &text).len(), 64);
    assert_eq!(body_columns(&b).len(), LOG_COLUMNS.len());
}

#[test]
fn long_or_nul_subjects_are_stored_as_their_hash() {
    assert_eq!(subject_code("P00001"), "P00001");
    let exact = "a".repeat(MAX_SUBJECT_BYTES);
    assert_eq!(subject_code(&exact), exact);
    let long = "a".repeat(MAX_SUBJECT_BYTES + 1);
    assert_eq!(subject_code(&long), format!("sha256:{}", sha256_hex(&long)));
    assert_eq!(
        subject_code("a\0b"),
        format!("sha256:{}", sha256_hex("a\0b"))
    );
}

#[test]
fn dictionary_links_separate_the_id_from_the_code() {
    assert_ne!(
        dict_link(GENESIS_HASH, 1, "23"),
        dict_link(GENESIS_HASH, 12, "3")
    );
    assert_eq!(
        dict_link(GENESIS_HASH, 1, "P1"),
        sha256_hex(&format!("{GENESIS_HASH}1:P1"))
    );
}

fn usage(tx: &str) -> Pending {
    Pending {
        body: Body {
            v: BODY_VERSION,
            seq: 0,
            kind: "usage".into(),
            time: 1,
            recorded: 0,
            role: Some("consumer".into()),
            organisation: Some("BANK".into()),
            system: Some("3".into()),
            user: None,
            token: None,
            purpose: Some("loan".into()),
            channel: None,
            dataset: None,
            version: None,
            attributes: Vec::new(),
            agreements: Vec::new(),
            request_id: None,
            query_sha256: None,
            rows: 1,
            subject_count: 1,
            subjects: Some(vec!["P00001".into()]),
            subjects_sha256: None,
            dict_id: None,
            dict_hash: None,
            reporter: Some("3".into()),
            transaction_id: Some(tx.into()),
            access_record: None,
        },
        containers: Vec::new(),
    }
}

/// Jobs queued before the writer starts are one batch: the job holding an entry the
/// database refuses fails alone, the others are written, in order, in one chain.
#[tokio::test]
async fn a_poisoned_job_fails_alone_and_the_rest_of_its_batch_is_written() {
    poisoned_batch().await;
}

/// The pool writer (PostgreSQL's; here on the SQLite file of a store, whose own writer is
/// the commit log's thread and has no per-entry failure before the commit point).
async fn poisoned_batch() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = open(&url).await;
    let pool = store.pool().clone();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON audit_log \
         WHEN NEW.transaction_id = 'POISON' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (jobs, rx) = mpsc::channel(16);
    let mut answers = Vec::new();
    for txs in [
        &["A"][..],
        &["B", "POISON"][..],
        &["C"][..],
        &["A", "D"][..],
    ] {
        let (reply, answer) = oneshot::channel();
        let entries = txs.iter().map(|t| usage(t)).collect();
        jobs.send(Msg::Job(Job { entries, reply })).await.unwrap();
        answers.push(answer);
    }
    drop(jobs);
    let stats = Arc::new(Stats::default());
    run_writer(pool, Backend::Sqlite, 1000, rx, Arc::clone(&stats)).await;
    let mut got = Vec::new();
    for a in answers {
        got.push(a.await.unwrap());
    }
    assert_eq!(got[0], Ok(vec![Written::Recorded(1)]));
    let e = got[1].clone().unwrap_err();
    assert!(e.contains("poisoned"), "{e}");
    assert_eq!(got[2], Ok(vec![Written::Recorded(2)]));
    assert_eq!(
        got[3],
        Ok(vec![Written::Duplicate(1), Written::Recorded(3)])
    );
    let report = intact(&store).await;
    assert_eq!(report.records, 3);
    store.close().await;
}

#[tokio::test]
async fn containers_partition_the_bitmap_and_hash_its_ids() {
    let ids: RoaringBitmap = [1u32, 2, 70_000, 70_001, 200_000].into_iter().collect();
    let r = bulk(ids.clone()).await.unwrap();
    assert_eq!(r.count, 5);
    let his: Vec<i64> = r.containers.iter().map(|(h, _)| *h).collect();
    assert_eq!(his, [0, 1, 3]);
    let mut union = RoaringBitmap::new();
    for (_, bits) in &r.containers {
        union |= RoaringBitmap::deserialize_from(&bits[..]).unwrap();
    }
    assert_eq!(union, ids);
    assert!(r.containers.iter().all(|(_, b)| !b.is_empty()));
    let mut h = Sha256::new();
    for id in &ids {
        h.update(id.to_le_bytes());
    }
    assert_eq!(r.sha256.unwrap(), to_hex(&h.finalize()));
}

/// Two stores of one process on one file share its writer: one chain, duplicates seen
/// across them, one commit log. A store of another process (here: the lock held by hand)
/// finds the commit log locked, refuses entries with a clear error and reads what was
/// written. Once the writers are closed, a new store writes again and continues the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_per_file_and_a_second_process_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let a = open(&url).await;
    let b = open(&url).await;
    let mut seqs = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 { &a } else { &b };
        let written = store.submit(vec![usage(&format!("T{i}"))]).await.unwrap();
        seqs.push(written[0].seq());
    }
    assert_eq!(seqs, (1..=6).collect::<Vec<i64>>());
    assert_eq!(
        b.submit(vec![usage("T0")]).await.unwrap(),
        vec![Written::Duplicate(1)]
    );
    assert_eq!(a.writer_stats().groups, 7);
    a.close().await;
    // `b` still writes: the writer stops with the last store.
    b.submit(vec![usage("T6")]).await.unwrap();
    b.close().await;
    assert!(
        segment_files(dir.path()).is_empty(),
        "a clean close leaves no commit log"
    );

    let held = std::fs::File::create(dir.path().join("audit.db-seg.lock")).unwrap();
    held.try_lock().unwrap();
    let other = open(&url).await;
    let e = other
        .submit(vec![usage("T9")])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("another process writes the audit log"), "{e}");
    let report = intact(&other).await;
    assert_eq!(report.records, 7);
    other.close().await;
    drop(held);

    let c = open(&url).await;
    assert_eq!(
        c.submit(vec![usage("T5"), usage("T7")]).await.unwrap(),
        vec![Written::Duplicate(6), Written::Recorded(8)]
    );
    let report = intact(&c).await;
    assert_eq!(report.records, 8);
    c.close().await;
}

/// The store of `url`, with the default configuration.
async fn open(url: &str) -> AuditStore {
    AuditStore::open(url, AuditConfig::default()).await.unwrap()
}

/// Verify the whole chain and require it intact.
async fn intact(store: &AuditStore) -> VerifyReport {
    let report = store.verify(None, &mut |_| {}).await.unwrap();
    assert!(report.broken.is_none(), "{report}");
    report
}

/// A segment file starting at `first`: the header and `frames`, in `dir`.
fn write_segment(dir: &std::path::Path, first: i64, frames: &[u8]) -> std::path::PathBuf {
    let path = dir.join(format!("audit.db-seg-{first:020}"));
    let mut bytes = b"DAGRSEG1".to_vec();
    bytes.extend(frames);
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// The commit log segments beside `audit.db` in `dir`.
fn segment_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("audit.db-seg-"))
        .collect();
    names.sort();
    names
}

/// Groups chained after the head of a closed store's file, for a commit log written by hand.
fn chained(from: (i64, &str, i64), txs: &[&str]) -> Group {
    let batch: Vec<Pending> = txs.iter().map(|t| usage(t)).collect();
    chain_group(from, &mut HashMap::new(), None, &[batch])
}

/// What a crash between the commit log's sync and the tables leaves: groups in a segment
/// that the tables lack, and a last frame whose sync never returned. Opening the store
/// replays the groups (they were acknowledged), cuts the torn frame off (it was not), and
/// the chain verifies; a second open replays nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_replays_the_commit_log_and_cuts_off_a_torn_frame() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let url = format!("sqlite://{}", db.display());
    let store = open(&url).await;
    store.submit(vec![usage("A")]).await.unwrap();
    let head = store.chain_head().await.unwrap();
    store.close().await;
    assert!(segment_files(dir.path()).is_empty());

    let rec = Time::now().0;
    let g1 = chained((head.seq, &head.hash, rec), &["B", "C"]);
    let g2 = chained((g1.seq, &g1.hash, rec), &["D"]);
    let g3 = chained((g2.seq, &g2.hash, rec), &["E"]);
    let mut frames = seglog::encode(&g1);
    frames.extend(seglog::encode(&g2));
    let torn = seglog::encode(&g3);
    // Cut in the middle (a cut of trailing zero bytes, filled by the zeros after it, would
    // leave a whole frame: replayed, rightly).
    frames.extend(&torn[..torn.len() / 2]);
    // The preallocated rest of the segment.
    frames.extend(vec![0u8; 64 << 10]);
    write_segment(dir.path(), head.seq + 1, &frames);

    let store = open(&url).await;
    let report = intact(&store).await;
    assert_eq!((report.records, report.head_seq), (4, 4), "{report}");
    assert_eq!(report.head_hash, g2.hash);
    // The replayed events are known: a repeat is a duplicate; the torn one was never written.
    assert_eq!(
        store.submit(vec![usage("D"), usage("E")]).await.unwrap(),
        vec![Written::Duplicate(4), Written::Recorded(5)]
    );
    store.close().await;
    assert!(segment_files(dir.path()).is_empty());
    let store = open(&url).await;
    let report = intact(&store).await;
    assert_eq!(report.records, 5);
    store.close().await;
}

/// A commit log that does not continue the tables' chain, or is damaged before its last
/// frame, is refused: the store does not open, and says where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_log_that_does_not_continue_the_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = open(&url).await;
    store.submit(vec![usage("A")]).await.unwrap();
    store.close().await;
    let rec = Time::now().0;
    // Chained from the genesis, not from entry 1.
    let stray = chained((1, GENESIS_HASH, rec), &["B"]);
    let seg = write_segment(dir.path(), 2, &seglog::encode(&stray));
    let e = AuditStore::open(&url, AuditConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not continue"), "{e}");
    // A damaged frame followed by another segment: corruption, not a torn tail.
    std::fs::remove_file(&seg).unwrap();
    let good = chained(
        (
            1,
            &{
                let s = open(&url).await;
                let h = s.chain_head().await.unwrap().hash;
                s.close().await;
                h
            },
            rec,
        ),
        &["B"],
    );
    let mut frame = seglog::encode(&good);
    let last = frame.len() - 1;
    frame[last] ^= 0xff;
    write_segment(dir.path(), 2, &frame);
    write_segment(dir.path(), 3, &[]);
    let e = AuditStore::open(&url, AuditConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("checksum"), "{e}");
}

/// In the last segment, a damaged frame followed by a good one is corruption, not a torn
/// tail: the acknowledged frame after it is never cut off silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_frame_before_good_ones_is_refused_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = open(&url).await;
    let head = store.chain_head().await.unwrap();
    store.close().await;
    let rec = Time::now().0;
    let g1 = chained((head.seq, &head.hash, rec), &["A"]);
    let g2 = chained((g1.seq, &g1.hash, rec), &["B"]);
    let mut f1 = seglog::encode(&g1);
    let mid = f1.len() / 2;
    f1[mid] ^= 0x55;
    let mut frames = f1;
    frames.extend(seglog::encode(&g2));
    frames.extend(vec![0u8; 4096]);
    let seg = write_segment(dir.path(), head.seq + 1, &frames);
    let bytes = std::fs::read(&seg).unwrap();
    let e = AuditStore::open(&url, AuditConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("before the end of the log"), "{e}");
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing was cut");
}

#[test]
fn frames_round_trip_and_bad_payloads_are_errors() {
    let g = chained((0, GENESIS_HASH, 5), &["A", "B"]);
    let frame = seglog::encode(&g);
    let back = seglog::decode(&frame[8..]).unwrap();
    assert_eq!(
        (back.seq, &back.hash, back.recorded),
        (g.seq, &g.hash, g.recorded)
    );
    assert_eq!(back.log.len(), 2);
    for (a, b) in back.log.iter().flatten().zip(g.log.iter().flatten()) {
        assert_eq!(a.to_string(), b.to_string());
    }
    assert_eq!(back.subjects.len(), g.subjects.len());
    assert_eq!(back.daily.len(), g.daily.len());
    // Every truncation is an error, never a panic.
    for cut in 0..frame.len() - 8 {
        assert!(seglog::decode(&frame[8..8 + cut]).is_err(), "cut at {cut}");
    }
    let mut long = frame[8..].to_vec();
    long.push(0);
    assert!(seglog::decode(&long).is_err());
}

/// The writer's and the checkpointer's connections keep the durability settings the log
/// promises: `synchronous = FULL`, no automatic checkpoint on a commit.
#[tokio::test]
async fn the_writer_connection_syncs_every_commit_and_never_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = open(&url).await;
    let conn = thread::connect(&dir.path().join("audit.db")).unwrap();
    let pragma = |name: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(pragma("synchronous"), 2, "FULL");
    assert_eq!(pragma("wal_autocheckpoint"), 0);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    store.close().await;
}
