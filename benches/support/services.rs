//! External services an end-to-end bench needs, started with the project's own scripts
//! (`scripts/s3`, `scripts/postgres`) unless the environment names running ones; each one
//! this bench started is stopped when dropped.

use std::process::{Command, Stdio};

/// A service started with `scripts/NAME start DIR`, stopped with `scripts/NAME stop DIR` when
/// dropped.
struct Started {
    script: &'static str,
    dir: tempfile::TempDir,
}

impl Started {
    /// Run `scripts/{script} start` in a new directory (its progress on stderr); the service
    /// and what the script printed on stdout.
    fn start(script: &'static str) -> (Started, String) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        eprintln!("starting {script} with scripts/{script} ...");
        let out = Command::new(format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")))
            .arg("start")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
        assert!(out.status.success(), "scripts/{script} start failed");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (Started { script, dir }, stdout)
    }

    fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new(format!(
            "{}/scripts/{}",
            env!("CARGO_MANIFEST_DIR"),
            self.script
        ))
        .arg("stop")
        .arg(self.dir.path())
        .status();
    }
}

/// An S3 server: the environment of a running one, or one this bench started (stopped on drop).
pub(crate) struct S3 {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) bucket: String,
    _started: Option<Started>,
}

impl S3 {
    pub(crate) fn get() -> S3 {
        let (file, started) = match std::env::var("DAGR_BENCH_S3_ENV") {
            Ok(f) if !f.is_empty() => (std::path::PathBuf::from(f), None),
            _ => {
                let (started, _) = Started::start("s3");
                (started.dir().join("env"), Some(started))
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
            _started: started,
        }
    }
}

/// A PostgreSQL server: `DAGR_BENCH_POSTGRES_URL` (a database the bench may create databases
/// beside), or one this bench started with `scripts/postgres` (stopped on drop).
pub(crate) struct Postgres {
    /// The URL of a database on the server.
    pub(crate) url: String,
    _started: Option<Started>,
}

impl Postgres {
    pub(crate) fn get() -> Postgres {
        if let Ok(url) = std::env::var("DAGR_BENCH_POSTGRES_URL")
            && !url.is_empty()
        {
            return Postgres {
                url,
                _started: None,
            };
        }
        // The URL is the only line the script prints on stdout.
        let (started, url) = Started::start("postgres");
        Postgres {
            url: url.trim().to_owned(),
            _started: Some(started),
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
