//! End to end: `dagr serve --config FILE`, `dagr config check FILE` and `dagr config example`
//! with the real binary (see docs/configuration.md).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `dagr` with `args`, none of the developer's `DAGR_...` variables, and `env` set.
fn dagr(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dagr"));
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DAGR_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("NO_COLOR", "1").env("DAGR_LOG", "info");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

/// Write `text` to `dir/name`; its path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Run `dagr config check FILE`: (exit code, stdout, stderr).
fn check(file: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = dagr(&["config", "check", file], env).output().unwrap();
    (
        status.code().expect("dagr exited by itself"),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// The line of `out` setting `key` (or saying it is not set).
fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| {
            l.trim_start_matches("# ")
                .strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(" ="))
        })
        .unwrap_or_else(|| panic!("no line for `{key}` in:\n{out}"))
}

#[test]
fn check_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "dagr.toml",
        r#"
# a comment
http-addr = "0.0.0.0:9000"
flight_cache_mb = 1024          # snake_case is accepted too
no-demo = true
data-dir = "data"
database-url = "postgres://dagr:s3cret-pw@db.example:5432/dagr"
quota-rps = 7
"#,
    );
    let (code, out, err) = check(&file, &[("DAGR_QUOTA_RPS", "9")]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    // Values from the file, with their source.
    assert!(
        line(&out, "http-addr").starts_with(r#"http-addr = "0.0.0.0:9000" "#),
        "{out}"
    );
    assert!(line(&out, "http-addr").ends_with("# from file"), "{out}");
    assert!(line(&out, "flight-cache-mb").starts_with("flight-cache-mb = 1024 "));
    assert!(line(&out, "flight-cache-mb").ends_with("# from file"));
    assert!(line(&out, "no-demo").starts_with("no-demo = true "));
    // A relative path is resolved against the file's directory.
    let data = std::path::absolute(dir.path().join("data")).unwrap();
    assert!(
        line(&out, "data-dir").starts_with(&format!("data-dir = \"{}\"", data.display())),
        "{out}"
    );
    // The password is redacted.
    assert!(!out.contains("s3cret-pw"), "{out}");
    assert!(
        line(&out, "database-url")
            .starts_with(r#"database-url = "postgres://dagr:***@db.example:5432/dagr""#),
        "{out}"
    );
    // The environment wins over the file.
    assert!(
        line(&out, "quota-rps").starts_with("quota-rps = 9 "),
        "{out}"
    );
    assert!(line(&out, "quota-rps").ends_with("# from env DAGR_QUOTA_RPS"));
    // Defaults, and unset options as comments.
    assert!(line(&out, "keep-versions").starts_with("keep-versions = 3 "));
    assert!(line(&out, "keep-versions").ends_with("# default"));
    assert!(line(&out, "secure-cookies").starts_with("secure-cookies = false "));
    assert!(line(&out, "bulk-threads").starts_with("# bulk-threads = (not set) "));
    // `--config` itself is not a setting of the file.
    assert!(!out.lines().any(|l| l.starts_with("config =")), "{out}");
    // The output is itself a valid configuration file.
    let again = write(dir.path(), "effective.toml", &out);
    let (code, out2, err) = check(&again, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(line(&out2, "data-dir").ends_with("# from file"), "{out2}");
    assert!(
        line(&out2, "quota-rps").starts_with("quota-rps = 9 "),
        "{out2}"
    );
}

#[test]
fn invalid_files_exit_2_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "htp-addr = \"127.0.0.1:1\"",
            &["unknown key `htp-addr`", "did you mean `http-addr`"],
        ),
        (
            "flight-batch-rows = 1",
            &["flight-batch-rows", "1 is not in 64..=1048576"],
        ),
        ("http-addr = \"nowhere\"", &["key `http-addr`", "nowhere"]),
        ("no-demo = \"yes\"", &["key `no-demo`", "true or false"]),
        (
            "keep-versions = true",
            &["key `keep-versions`", "whole number"],
        ),
        ("mail-from = [\"a\"]", &["key `mail-from`", "a string"]),
        ("config = \"other.toml\"", &["`config`"]),
        (
            "http-addr = \"127.0.0.1:1\"\nhttp_addr = \"127.0.0.1:2\"",
            &["twice"],
        ),
        ("http-addr = ", &["not valid TOML"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("bad-{i}.toml"), text);
        let (code, out, err) = check(&file, &[]);
        assert_eq!(code, 2, "{text}: stdout:\n{out}\nstderr:\n{err}");
        assert!(out.is_empty(), "{text}: {out}");
        assert!(
            err.contains(&file),
            "{text}: the error names the file: {err}"
        );
        for needle in *needles {
            assert!(err.contains(needle), "{text}: `{needle}` not in: {err}");
        }
    }
    // A value the environment overrides is still checked.
    let file = write(dir.path(), "range.toml", "flight-batch-rows = 1\n");
    let (code, _, err) = check(&file, &[("DAGR_FLIGHT_BATCH_ROWS", "128")]);
    assert_eq!(code, 2, "{err}");
    // Too large, missing.
    let big = format!("# {}\n", "x".repeat(1 << 20));
    let file = write(dir.path(), "big.toml", &big);
    let (code, _, err) = check(&file, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
    let missing = dir.path().join("missing.toml");
    let (code, _, err) = check(missing.to_str().unwrap(), &[]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the configuration file"), "{err}");
    // `dagr serve` refuses the same file the same way, before opening anything.
    let file = write(dir.path(), "serve.toml", "flight-batch-rows = 1\n");
    let out = dagr(&["serve", "--config", &file], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("key `flight-batch-rows`") && err.contains(&file),
        "{err}"
    );
}

/// A `dagr serve` started by a test; killed on drop.
struct Serve {
    child: Child,
    /// The "DAGR listening" log line.
    listening: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Start `dagr` with `args` and wait (at most two minutes) until it listens.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Serve {
        Serve::start_in(None, args, env)
    }

    /// [`Serve::start`] in the working directory `cwd`.
    fn start_in(cwd: Option<&std::path::Path>, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut command = dagr(args, env);
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        // Owned by a `Serve` at once: killed and waited for on every path, panics included.
        let mut server = Serve {
            child: command
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            listening: String::new(),
        };
        let stderr = server.child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) else {
                panic!("dagr never listened; log:\n{}", log.join("\n"));
            };
            if line.contains("DAGR listening") {
                server.listening = line;
                return server;
            }
            log.push(line);
        }
    }

    /// The value of `name=` in the listening line.
    fn field(&self, name: &str) -> &str {
        let prefix = format!("{name}=");
        self.listening
            .split_whitespace()
            .find_map(|w| w.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name}= in {}", self.listening))
    }

    /// The status line of `GET path` (plain HTTP/1.1 on the bound address).
    fn get_status(&self, path: &str) -> String {
        let mut conn = std::net::TcpStream::connect(self.field("http")).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        response.lines().next().unwrap_or_default().to_owned()
    }
}

const SERVE_FILE: &str = r#"
http-addr = "127.0.0.1:0"
flight-addr = "127.0.0.1:0"
no-demo = true
data-dir = "data"
"#;

#[test]
fn serve_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "dagr.toml", SERVE_FILE);
    // Started elsewhere: the data directory is beside the file, not in the working directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let server = Serve::start_in(Some(elsewhere.path()), &["serve", "--config", &file], &[]);
    let data = std::path::absolute(dir.path().join("data")).unwrap();
    assert_eq!(server.field("data_dir"), data.to_str().unwrap());
    assert!(data.is_dir());
    assert!(!elsewhere.path().join("data").exists());
    assert_eq!(server.get_status("/api/v1/health"), "HTTP/1.1 200 OK");
    // `no-demo = true` applied: nothing seeded.
    assert!(!data.join("demo-credentials.json").exists());
}

#[test]
fn serve_flags_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "dagr.toml", SERVE_FILE);
    let other = dir.path().join("other");
    // The file named by the environment; a flag overrides its data directory.
    let server = Serve::start(
        &["serve", "--data-dir", other.to_str().unwrap()],
        &[("DAGR_CONFIG", &file)],
    );
    assert_eq!(server.field("data_dir"), other.to_str().unwrap());
    assert!(other.is_dir());
    assert!(!dir.path().join("data").exists());
    assert_eq!(server.get_status("/api/v1/health"), "HTTP/1.1 200 OK");
}

/// The example in docs/configuration.md is `dagr config example`, and a valid file.
#[test]
fn the_documented_example_is_current() {
    let out = dagr(&["config", "example"], &[]).output().unwrap();
    assert!(out.status.success());
    let example = String::from_utf8(out.stdout).unwrap();
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let begin = "<!-- example: the output of `dagr config example` -->\n```toml\n";
    let start = doc
        .find(begin)
        .expect("the example marker in docs/configuration.md")
        + begin.len();
    let len = doc[start..].find("```\n").expect("the end of the example");
    assert!(
        doc[start..start + len] == example,
        "docs/configuration.md's example differs from `dagr config example`; replace it \
         with:\n{example}"
    );
    // It names every setting `dagr config check` prints.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "example.toml", &example);
    let (code, out, err) = check(&file, &[]);
    assert_eq!(code, 0, "{err}");
    for l in out.lines().filter(|l| {
        !l.starts_with("# The")
            && !l.starts_with("# secrets")
            && !l.starts_with("# Configuration file")
    }) {
        let key = l.trim_start_matches("# ").split(" =").next().unwrap();
        assert!(
            example
                .lines()
                .any(|e| e.trim_start_matches("# ").starts_with(&format!("{key} ="))),
            "`{key}` is missing from the example"
        );
    }
}
