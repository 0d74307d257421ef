//! External services an end-to-end bench needs, started with the project's own scripts
//! (`scripts/s3`, `scripts/postgres`) unless the environment names running ones; each one
//! this bench started is stopped when dropped.

use std::process::Command;

/// An S3 server: the environment of a running one, or one this bench started (stopped on drop).
pub(crate) struct S3 {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) bucket: String,
    started: Option<tempfile::TempDir>,
}

impl S3 {
    pub(crate) fn get() -> S3 {
        let (file, started) = match std::env::var("DAGR_BENCH_S3_ENV") {
            Ok(f) if !f.is_empty() => (std::path::PathBuf::from(f), None),
            _ => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                eprintln!("starting SeaweedFS with scripts/s3 ...");
                let ok = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3"))
                    .arg("start")
                    .arg(dir.path())
                    .status()
                    .expect("run scripts/s3")
                    .success();
                assert!(ok, "scripts/s3 start failed");
                (dir.path().join("env"), Some(dir))
            }
        };
        let text = std::fs::read_to_string(&file).expect("the S3 environment file");
        let mut env = Vec::new();
        let mut bucket = String::new();
        for (k, v) in text.lines().filter_map(|l| l.split_once('=')) {
            match k {
                "DAGR_TEST_S3_BUCKET" => bucket = v.to_owned(),
                _ => env.push((k.to_owned(), v.to_owned())),
            }
        }
        S3 {
            env,
            bucket,
            started,
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3"))
                .arg("stop")
                .arg(dir.path())
                .status();
        }
    }
}

/// A PostgreSQL server: `DAGR_BENCH_POSTGRES_URL` (a database the bench may create databases
/// beside), or one this bench started with `scripts/postgres` (stopped on drop).
pub(crate) struct Postgres {
    /// The URL of a database on the server.
    pub(crate) url: String,
    started: Option<tempfile::TempDir>,
}

impl Postgres {
    pub(crate) fn get() -> Postgres {
        if let Ok(url) = std::env::var("DAGR_BENCH_POSTGRES_URL")
            && !url.is_empty()
        {
            return Postgres { url, started: None };
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        eprintln!("starting PostgreSQL with scripts/postgres ...");
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres"))
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/postgres");
        assert!(
            out.status.success(),
            "scripts/postgres start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .expect("a URL")
            .trim()
            .to_owned();
        Postgres {
            url,
            started: Some(dir),
        }
    }

    /// A new, empty database on the server, by URL.
    pub(crate) async fn fresh_database(&self, name: &str) -> String {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create a database");
        pool.close().await;
        let (prefix, _) = self.url.rsplit_once('/').expect("a database in the URL");
        format!("{prefix}/{name}")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres"))
                .arg("stop")
                .arg(dir.path())
                .status();
        }
    }
}
