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
    poisoned_batch(false).await;
}

/// The same with the SQLite writer thread.
#[tokio::test]
async fn the_writer_thread_also_fails_a_poisoned_job_alone() {
    poisoned_batch(true).await;
}

async fn poisoned_batch(on_thread: bool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = AuditStore::open(&url, AuditConfig::default())
        .await
        .unwrap();
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
    if on_thread {
        let path = dir.path().join("audit.db");
        let threads = thread::spawn(&path, 1000, rx, Arc::clone(&stats)).unwrap();
        tokio::task::spawn_blocking(move || threads.join())
            .await
            .unwrap();
    } else {
        run_writer(pool, Backend::Sqlite, 1000, rx, Arc::clone(&stats)).await;
    }
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
    let report = store.verify(None, &mut |_| {}).await.unwrap();
    assert!(report.broken.is_none(), "{report}");
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

/// Two stores on one file (two servers pointed at one data directory by mistake): each
/// writer thread finds the stored head moved under the one it keeps, reads it again, and the
/// entries form one chain; the counters see every group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_one_file_extend_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let a = AuditStore::open(&url, AuditConfig::default())
        .await
        .unwrap();
    let b = AuditStore::open(&url, AuditConfig::default())
        .await
        .unwrap();
    let mut seqs = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { &a } else { &b };
        let written = store.submit(vec![usage(&format!("T{i}"))]).await.unwrap();
        seqs.push(written[0].seq());
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<i64>>());
    // A repeat through the other store is a duplicate, not a new entry.
    let again = b.submit(vec![usage("T0")]).await.unwrap();
    assert_eq!(again, vec![Written::Duplicate(1)]);
    let report = a.verify(None, &mut |_| {}).await.unwrap();
    assert!(report.broken.is_none(), "{report}");
    assert_eq!(report.records, 10);
    let (sa, sb) = (a.writer_stats(), b.writer_stats());
    assert_eq!(sa.groups + sb.groups, 11);
    assert_eq!(sa.records + sb.records, 11);
    a.close().await;
    b.close().await;
}

/// The writer's and the checkpointer's connections keep the durability settings the log
/// promises: `synchronous = FULL`, no automatic checkpoint on a commit.
#[tokio::test]
async fn the_writer_connection_syncs_every_commit_and_never_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = AuditStore::open(&url, AuditConfig::default())
        .await
        .unwrap();
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
