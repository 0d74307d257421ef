//! End to end: the Python Arrow clients (the ADBC Flight SQL driver and `pyarrow.flight`) against
//! the real `dagr` binary's Flight endpoint. The clients live in a virtualenv made by
//! `scripts/python-env`; the checks are in `tests/python/flight_compat.py`.
//!
//! Without network to PyPI the virtualenv cannot be made and the test is skipped, unless
//! `DAGR_TEST_REQUIRE_PYTHON=1` (set by `scripts/test`) makes that a failure.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, credentials, system_token};

const DEMO_ROWS: usize = 1000;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The attributes of the demo's BANKA consumer agreement on `persons`.
const BANK_COLUMNS: &str = "personal_code,given_name,family_name,birth_date,declared_address_code";

#[test]
fn python_flight_clients_read_persons_within_agreements() {
    let Some(python) = common::python_env("the Python Flight client test") else {
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, DEMO_ROWS, &[]);
    let flight_addr = flight_addr(&server.logged());
    let creds = credentials(&data);
    let pmlp = system_token(&creds, "PMLP", "provider");
    let bank = system_token(&creds, "BANKA", "consumer");
    // Rīga's consumer with two agreements: cells of rows outside Rīga hidden.
    let riga = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::second_riga_agreement(&server, &creds));

    let script = Path::new(ROOT).join("tests/python/flight_compat.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("grpc://{flight_addr}"))
        .args([&pmlp, &bank])
        .arg(BANK_COLUMNS)
        .arg(&riga)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .output()
        .expect("run the Python client checks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    if !stderr.trim().is_empty() {
        eprintln!("stderr of {}:\n{stderr}", script.display());
    }
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success() && last.ends_with(" passed, 0 failed"),
        "the Python Flight clients failed ({}); last line {last:?}; server log:\n{}",
        out.status,
        server.logged()
    );
    server.terminate();
}

/// The Flight address (`flight=HOST:PORT`) from the server's listening line.
fn flight_addr(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("DAGR listening"))
        .flat_map(str::split_whitespace)
        .find_map(|w| w.strip_prefix("flight="))
        .unwrap_or_else(|| panic!("no flight= in the listening line; log:\n{log}"))
        .trim_matches(|c: char| c == ',' || c == '"')
        .to_owned()
}
