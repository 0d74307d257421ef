//! The stable smoke run of the fuzz targets (`docs/fuzzing.md`), which CI runs with the rest
//! of the tests: every input of `fuzz/corpus/TARGET/` through its target, then seeded random
//! mutations of those inputs (bit flips, inserted and deleted bytes, splices between inputs,
//! a bracket or a chunk repeated many times, truncation, edge-case numbers and tokens) until
//! the target's time budget is spent. The target bodies are those of the libFuzzer binaries
//! (`fuzz/src/targets.rs`); this is not coverage-guided, only the same targets on stable.
//!
//! - `DAGR_FUZZ_SECS`: seconds per target, its corpus included (default 15; 0 = the corpus
//!   only);
//! - `DAGR_FUZZ_SEED`: the PRNG seed (decimal or `0x` hex; default fixed, always printed);
//! - `DAGR_FUZZ_REPLAY`: a file or directory to run through the target(s) instead.
//!
//! A target fails on a panic anywhere in it (a panic hook sees those of its runtime's
//! threads too), naming the target, the seed and the mutant, with the input in hex and
//! saved under `target/tmp/fuzz-smoke/`. An abort (a stack overflow, an allocation failure)
//! ends the process: the input it was running is always in
//! `target/tmp/fuzz-smoke/TARGET.current`. An input running longer than 60 s is a hang and
//! ends the process the same way.

#[allow(unreachable_pub)]
#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// Seconds per target (its corpus, then mutants until the time is up) unless
/// `DAGR_FUZZ_SECS` says otherwise: 7 targets make under 2 minutes.
const DEFAULT_SECS: f64 = 15.0;
/// The PRNG seed unless `DAGR_FUZZ_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0xDA6B_F022_2026;
/// An input that runs longer than this is a hang.
const HANG: Duration = Duration::from_secs(60);
/// Largest mutant.
const MAX_INPUT: usize = 1 << 20;
/// Mutants kept to mutate further.
const POOL: usize = 256;

type TargetFn = fn(&[u8]);

#[test]
fn ticket() {
    smoke("ticket", targets::ticket, TICKET_TOKENS);
}

#[test]
fn json_body() {
    smoke("json_body", targets::json_body, JSON_TOKENS);
}

#[test]
fn type_string() {
    smoke("type_string", targets::type_string, TYPE_TOKENS);
}

#[test]
fn sql() {
    smoke("sql", targets::sql, SQL_TOKENS);
}

#[test]
fn ingest_parquet() {
    smoke("ingest_parquet", targets::ingest_parquet, PARQUET_TOKENS);
}

#[test]
fn ingest_csv() {
    smoke("ingest_csv", targets::ingest_csv, CSV_TOKENS);
}

#[test]
fn ingest_ndjson() {
    smoke("ingest_ndjson", targets::ingest_ndjson, NDJSON_TOKENS);
}

/// The targets' skip of the known exponential SQL parse (`targets::exponential_sql`)
/// takes what it must and no more.
#[test]
fn exponential_sql_is_recognised() {
    let _serial = lock(&SERIAL);
    let nested = |open: &str, n: usize| format!("SELECT {}1{}", open.repeat(n), ")".repeat(n));
    assert!(!targets::exponential_sql(&nested("CAST(", 8)));
    assert!(targets::exponential_sql(&nested("CAST(", 9)));
    assert!(targets::exponential_sql(&nested("position (", 9)));
    assert!(targets::exponential_sql(&nested("abs(CAST(", 9)));
    assert!(targets::exponential_sql(&format!(
        "SELECT {}",
        "NOT (".repeat(9)
    )));
    assert!(!targets::exponential_sql(&nested("abs(", 40)));
    assert!(!targets::exponential_sql(&nested("(", 40)));
    assert!(!targets::exponential_sql(&format!(
        "SELECT '{}'",
        "CAST(".repeat(20)
    )));
}

// ---------------------------------------------------------------------------------------
// Tokens the mutator inserts, per target
// ---------------------------------------------------------------------------------------

const TICKET_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "\"dataset\":",
    "\"columns\":",
    "\"filter\":",
    "\"keys\":",
    "\"compression\":",
    "\"since\":",
    "\"persons\"",
    "\"companies\"",
    "\"personal_code\"",
    "\"lz4\"",
    "\"zstd\"",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandPreparedStatementQuery",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetTables",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetPrimaryKeys",
    "SELECT * FROM persons",
    "' OR 1=1 --",
];

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "\"definition\":",
    "\"attributes\":",
    "\"primary_key\":",
    "\"type\":",
    "\"name\":",
    "\"owner\":",
    "\"personal\":true",
    "\"subject\":",
    "\"row_scope\":",
    "\"dataset\":",
    "\"expires_at\":",
    "\"Dictionary(Int32, Utf8)\"",
    "\"List(List(Int64))\"",
    "\"Timestamp(µs, \\\"UTC\\\")\"",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"\\\\\"",
];

const TYPE_TOKENS: &[&str] = &[
    "(",
    ")",
    ", ",
    "\"",
    "List(",
    "LargeList(",
    "FixedSizeList(",
    "Dictionary(",
    "Timestamp(",
    "Struct(",
    "Map(",
    "Union(",
    "RunEndEncoded(",
    "Decimal128(",
    "Decimal256(",
    "FixedSizeBinary(",
    "Duration(",
    "Interval(",
    "Time64(",
    "Some(",
    "Int32",
    "Int64",
    "UInt8",
    "Utf8",
    "Utf8View",
    "Null",
    "nullable ",
    "µs",
    "ns",
    "Nanosecond",
    "\"UTC\"",
    "\"+99:99\"",
    "\"Europe/Riga\"",
];

const SQL_TOKENS: &[&str] = &[
    "SELECT ",
    " FROM ",
    " WHERE ",
    "persons",
    "companies",
    "addresses",
    "real_estate",
    "information_schema.columns",
    "personal_code",
    "birth_date",
    "(",
    ")",
    "+",
    "||",
    " AND ",
    " OR ",
    "NOT ",
    "-",
    "arrow_cast(",
    "'List(List(Int64))'",
    "'Dictionary(Int32, Utf8)'",
    " UNION ALL ",
    " JOIN ",
    " CROSS JOIN ",
    " GROUP BY ",
    " ORDER BY ",
    " LIMIT ",
    "range(",
    "unnest(",
    "generate_series(",
    "CASE WHEN ",
    "$1",
    "?",
    "WITH RECURSIVE ",
    "CAST(",
    "::",
    " AS ",
    "INTERVAL '",
    "DATE '",
    "TIMESTAMP '",
    "repeat(",
    "regexp_replace(",
    "array_agg(",
    "'",
    "\"",
    ";",
    "--",
    "/*",
    "EXPLAIN ",
];

const PARQUET_TOKENS: &[&str] = &["PAR1", "\u{15}\u{0}", "\u{16}\u{2}", "\u{18}"];

const CSV_TOKENS: &[&str] = &[
    ",",
    ";",
    "\"",
    "'",
    "\n",
    "\r\n",
    "\r",
    "\"\"",
    "NULL",
    "_dagr_change",
    "upsert",
    "delete",
    "\u{feff}",
    "true",
    "2024-02-30",
    "2024-01-01T00:00:00Z",
    "1.005",
    "\u{1}",
];

const NDJSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\n",
    "\r\n",
    "null",
    "\"id\":",
    "\"_dagr_change\":",
    "\"delete\"",
    "\"upsert\"",
    "\"day\":",
    "\"amount\":",
    "{\"a\":{\"b\":",
    "\"\\ud800\"",
    "\"\\u0000\"",
];

/// Numbers at the edges, as text.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "127",
    "128",
    "255",
    "256",
    "-129",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999999999999999999999",
    "1e308",
    "1e309",
    "-1e999",
    "4.9e-324",
    "1e-400",
    "0.000000000000000000000000000000000000001",
    "NaN",
    "-inf",
];

/// Integers at the edges, as bytes (binary formats' lengths, counts and offsets).
const INTEGERS: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// What a repeat inserts many times: openings of every nesting the parsers know.
const NESTINGS: &[&str] = &[
    "(", "[", "{", "<", "[[", "{\"a\":", "List(", "(SELECT ", "NOT ", "-", "+1", "'", "\"", "\\",
];

// ---------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------

/// Panics these targets found that are reported and not fixed yet: the target, a piece of
/// the panic's message, and what it is. A match is printed at the end of the run instead of
/// failing it; delete the entry once the bug is fixed, so that the check is back on.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "type_string",
        "a valid definition does not read back from its JSON",
        TIME_ZONE_ROUND_TRIP,
    ),
    (
        "type_string",
        "a definition changes through its JSON",
        TIME_ZONE_ROUND_TRIP,
    ),
    (
        "json_body",
        "a valid definition does not read back from its JSON",
        TIME_ZONE_ROUND_TRIP,
    ),
    (
        "json_body",
        "a definition changes through its JSON",
        TIME_ZONE_ROUND_TRIP,
    ),
];

/// Found by `type_string`: `parse_data_type` (engine/src/definition.rs) accepts any text as
/// a timestamp's time zone, but Arrow writes a type with the zone escaped (`Debug`) and
/// reads it back unescaped, so a zone holding a quote, a backslash or a control character
/// does not survive the definition's JSON: `Timestamp(ns, "A\u{1}")` is refused when the
/// stored definition is read at start (the dataset is then unreadable), `Timestamp(ns,
/// "a\"b")` grows a backslash at every round trip.
const TIME_ZONE_ROUND_TRIP: &str = "time zones that do not survive a definition's JSON";

/// Targets run one at a time: a panic is told to the one running.
static SERIAL: Mutex<()> = Mutex::new(());

/// The first panic since the last [`take_panic`] while a target ran: where, and the whole
/// message (with a backtrace when `RUST_BACKTRACE` asks for one).
static PANIC: Mutex<Option<(String, String, std::backtrace::Backtrace)>> = Mutex::new(None);

/// What runs now, for the hang watchdog and the panic hook: a description and since when.
static RUNNING: Mutex<Option<(String, Instant)>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Install the panic hook and the hang watchdog, once. While a target runs, the hook notes
/// every panic, on whichever thread (a runtime's worker, a blocking reader), instead of
/// printing it: the runner reports it once.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if lock(&RUNNING).is_none() {
                return previous(info);
            }
            let place = info
                .location()
                .map_or_else(|| "an unknown place".to_owned(), ToString::to_string);
            let thread = std::thread::current();
            let message = format!("thread '{}' {info}", thread.name().unwrap_or("<unnamed>"));
            let mut first = lock(&PANIC);
            if first.is_none() {
                // Resolved only if it is reported.
                *first = Some((place, message, std::backtrace::Backtrace::capture()));
            }
        }));
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                if let Some((what, since)) = lock(&RUNNING).as_ref()
                    && since.elapsed() > HANG
                {
                    say(&format!(
                        "fuzz smoke: HANG: {what} has run for more than {} s",
                        HANG.as_secs()
                    ));
                    std::process::exit(101);
                }
            }
        });
    });
}

fn take_panic() -> Option<(String, String, std::backtrace::Backtrace)> {
    lock(&PANIC).take()
}

/// A line on the real stderr, past the test harness's capture: it is seen even when the
/// process aborts a moment later.
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn env_secs() -> Duration {
    let secs = match std::env::var("DAGR_FUZZ_SECS") {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("DAGR_FUZZ_SECS must be a number of seconds; got `{v}`")),
        Err(_) => DEFAULT_SECS,
    };
    Duration::from_secs_f64(secs.max(0.0))
}

fn env_seed() -> u64 {
    match std::env::var("DAGR_FUZZ_SEED") {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
                None => v.replace('_', "").parse(),
            };
            parsed.unwrap_or_else(|_| panic!("DAGR_FUZZ_SEED must be an integer; got `{v}`"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke");
    std::fs::create_dir_all(&dir).expect("the fuzz-smoke directory");
    dir
}

/// The files of a directory (or the file itself), sorted by name, with their bytes.
fn inputs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.is_file())
            .collect::<Vec<_>>()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect()
}

/// FNV-1a, for crash file names and per-target seeds.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What became of one input.
enum Outcome {
    /// No panic.
    Passed,
    /// A panic reached the target's caller: where it started (when the hook saw it), and
    /// the message with its backtrace. A failure.
    Panicked(Option<String>, String),
    /// A panic happened and the code under test caught it (a reader's thread or task whose
    /// failure it turns into an error): where, and the message. A failure only with
    /// `DAGR_FUZZ_STRICT` (libFuzzer aborts on these too).
    Contained(String, String, std::backtrace::Backtrace),
}

/// Panics seen but not failed on, by place: how often, the first message and input file.
#[derive(Default)]
struct Seen {
    by_place: std::collections::BTreeMap<String, (u64, String, PathBuf)>,
}

/// Runs inputs through one target and reports its first failure.
struct Runner {
    name: &'static str,
    body: TargetFn,
    seed: u64,
    strict: bool,
    current: File,
    current_path: PathBuf,
    contained: Seen,
    known: Seen,
}

impl Runner {
    fn exec(&mut self, what: &str, input: &[u8]) -> Outcome {
        // On disk before it runs: an abort leaves it there.
        self.current
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.current.set_len(0))
            .and_then(|()| self.current.write_all(input))
            .expect("the current input is recorded");
        take_panic();
        *lock(&RUNNING) = Some((
            format!(
                "target `{}`, {what} (DAGR_FUZZ_SEED={:#x}; the input is in {})",
                self.name,
                self.seed,
                self.current_path.display()
            ),
            Instant::now(),
        ));
        let result = catch_unwind(AssertUnwindSafe(|| (self.body)(input)));
        let hooked = take_panic();
        *lock(&RUNNING) = None;
        match (result, hooked) {
            (Ok(()), None) => Outcome::Passed,
            (Ok(()), Some((place, message, backtrace))) => {
                Outcome::Contained(place, message, backtrace)
            }
            (Err(_), Some((place, message, backtrace))) => {
                Outcome::Panicked(Some(place), format!("{message}\n{backtrace}"))
            }
            (Err(payload), None) => Outcome::Panicked(
                None,
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic".to_owned()),
            ),
        }
    }

    /// Run one input: `Err` is the failure report.
    fn check(&mut self, what: &str, input: &[u8]) -> Result<(), String> {
        let (place, message, contained) = match self.exec(what, input) {
            Outcome::Passed => return Ok(()),
            Outcome::Panicked(place, message) => (place, message, false),
            Outcome::Contained(place, message, backtrace) if self.strict => {
                (Some(place), format!("{message}\n{backtrace}"), true)
            }
            Outcome::Contained(place, message, _) => (Some(place), message, true),
        };
        let known = KNOWN
            .iter()
            .find(|(target, piece, _)| *target == self.name && message.contains(piece));
        if let Some((_, _, what)) = known {
            self.note(Kind::Known, (*what).to_owned(), &message, input);
            return Ok(());
        }
        if contained && !self.strict {
            let place = place.unwrap_or_else(|| first_line(&message));
            self.note(Kind::Contained, format!("at {place}"), &message, input);
            return Ok(());
        }
        Err(self.report(what, input, &message))
    }

    fn note(&mut self, kind: Kind, key: String, message: &str, input: &[u8]) {
        let seen = match kind {
            Kind::Known => &mut self.known,
            Kind::Contained => &mut self.contained,
        };
        if let Some(entry) = seen.by_place.get_mut(&key) {
            entry.0 += 1;
            return;
        }
        let file = save(self.name, input);
        seen.by_place.insert(key, (1, first_line(message), file));
    }

    /// The failure report: where, how to reproduce, the input in hex and in a file.
    fn report(&self, what: &str, input: &[u8], panic: &str) -> String {
        let file = save(self.name, input);
        const SHOWN: usize = 2048;
        let hex: String = input
            .iter()
            .take(SHOWN)
            .map(|b| format!("{b:02x}"))
            .collect();
        let more = if input.len() > SHOWN { "…" } else { "" };
        format!(
            "fuzz target `{name}` panicked on {what}\n\
             reproduce: DAGR_FUZZ_SEED={seed:#x} cargo test --test fuzz_smoke {name}\n\
             or: DAGR_FUZZ_REPLAY={file} cargo test --test fuzz_smoke {name}\n\
             input ({len} bytes, saved to {file}): {hex}{more}\n\
             as text: {text:?}\n\
             panic: {panic}",
            name = self.name,
            seed = self.seed,
            file = file.display(),
            len = input.len(),
            text = String::from_utf8_lossy(&input[..input.len().min(512)]),
        )
    }

    /// The panics seen and not failed on, for the summary.
    fn summary(&self) -> String {
        let mut out = String::new();
        for (title, seen) in [
            ("known (reported) panics, not failed on", &self.known),
            (
                "panics the code under test caught, not failed on (DAGR_FUZZ_STRICT=1 fails on them)",
                &self.contained,
            ),
        ] {
            if seen.by_place.is_empty() {
                continue;
            }
            out.push_str(&format!("\n  {title}:"));
            for (place, (count, message, file)) in &seen.by_place {
                out.push_str(&format!(
                    "\n    {count}× {place}: {message} (first input: {})",
                    file.display()
                ));
            }
        }
        out
    }
}

enum Kind {
    Known,
    Contained,
}

/// The panic's message without its place, on one line and short.
fn first_line(message: &str) -> String {
    let text = message.lines().skip(1).collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// Save an input under `target/tmp/fuzz-smoke/`, named by its target and hash.
fn save(name: &str, input: &[u8]) -> PathBuf {
    let file = out_dir().join(format!("crash-{name}-{:016x}", fnv(input)));
    std::fs::write(&file, input).expect("the input is saved");
    file
}

/// Run the corpus of `name` through `body`, then mutants of it for the time budget.
fn smoke(name: &'static str, body: TargetFn, tokens: &'static [&'static str]) {
    let _serial = lock(&SERIAL);
    install();
    let seed = env_seed();
    let budget = env_secs();
    let replay = std::env::var_os("DAGR_FUZZ_REPLAY").map(PathBuf::from);
    // On a thread with the server's stack, as the libFuzzer binaries' main thread has a
    // big one: a parser that recurses is judged by what the server gives it.
    let outcome = std::thread::Builder::new()
        .name(format!("fuzz-{name}"))
        .stack_size(targets::STACK_BYTES)
        .spawn(move || run(name, body, tokens, seed, budget, replay))
        .expect("a fuzzing thread")
        .join()
        .expect("the fuzzing thread ends");
    if let Err(report) = outcome {
        say(&report);
        panic!("{report}");
    }
}

fn run(
    name: &'static str,
    body: TargetFn,
    tokens: &'static [&'static str],
    seed: u64,
    budget: Duration,
    replay: Option<PathBuf>,
) -> Result<(), String> {
    let current_path = out_dir().join(format!("{name}.current"));
    let current = File::create(&current_path).expect("the current-input file");
    let mut runner = Runner {
        name,
        body,
        seed,
        strict: env_flag("DAGR_FUZZ_STRICT"),
        current,
        current_path,
        contained: Seen::default(),
        known: Seen::default(),
    };
    if let Some(path) = replay {
        for (file, bytes) in inputs(&path) {
            runner.check(&format!("the replayed file {file}"), &bytes)?;
        }
        say(&format!(
            "fuzz smoke {name}: replayed {}{}",
            path.display(),
            runner.summary()
        ));
        return Ok(());
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let seeds = inputs(&corpus);
    assert!(!seeds.is_empty(), "no seeds in {}", corpus.display());
    say(&format!(
        "fuzz smoke {name}: {} seeds, then mutants until {:.1} s (DAGR_FUZZ_SEED={seed:#x})",
        seeds.len(),
        budget.as_secs_f64()
    ));
    let started = Instant::now();
    for (file, bytes) in &seeds {
        runner.check(&format!("the corpus file {file}"), bytes)?;
    }
    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, b)| b).collect();
    let mut rng = Rng(seed ^ fnv(name.as_bytes()));
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut mutants = 0u64;
    while started.elapsed() < budget {
        let base = if !pool.is_empty() && rng.below(3) == 0 {
            &pool[rng.below(pool.len())]
        } else {
            &seeds[rng.below(seeds.len())]
        };
        let mut input = base.clone();
        mutate(&mut rng, &mut input, &seeds, tokens);
        mutants += 1;
        runner.check(&format!("mutant #{mutants}"), &input)?;
        if pool.len() < POOL {
            pool.push(input);
        } else {
            let i = rng.below(POOL);
            pool[i] = input;
        }
    }
    say(&format!(
        "fuzz smoke {name}: {} seeds and {mutants} mutants passed in {:.1} s{}",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        runner.summary()
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// A position in `0..=len`.
    fn position(&mut self, len: usize) -> usize {
        self.below(len + 1)
    }

    /// A length from 1 to `max`, small ones more often.
    fn length(&mut self, max: usize) -> usize {
        let max = max.max(1);
        let cap = match self.below(4) {
            0 | 1 => max.min(8),
            2 => max.min(64),
            _ => max,
        };
        1 + self.below(cap)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Apply one to four random mutations to `input`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], tokens: &[&str]) {
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, input, seeds, tokens);
    }
    input.truncate(MAX_INPUT);
}

fn mutate_once(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], tokens: &[&str]) {
    let len = input.len();
    match rng.below(13) {
        // Flip a bit.
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        // A byte at the edges, or a structural one.
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = *rng.pick(&[
                0u8, 0xff, 0x7f, 0x80, 0xc3, 0xed, b'"', b'\'', b'\\', b'{', b'}', b'[', b']',
                b'(', b')', b',', b';', b':', b'\n', b'\r', b'0', b'9', b'-', b'.', b' ',
            ]);
        }
        // Add to or subtract from a byte.
        2 if len > 0 => {
            let i = rng.below(len);
            let delta = 1 + rng.below(16) as u8;
            input[i] = if rng.below(2) == 0 {
                input[i].wrapping_add(delta)
            } else {
                input[i].wrapping_sub(delta)
            };
        }
        // Insert random bytes.
        3 => {
            let at = rng.position(len);
            let n = rng.length(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        // Delete a range.
        4 if len > 0 => {
            let at = rng.below(len);
            let n = rng.length(len - at);
            input.drain(at..at + n);
        }
        // Copy a chunk elsewhere.
        5 if len > 0 => {
            let at = rng.below(len);
            let n = rng.length(len - at);
            let chunk = input[at..at + n].to_vec();
            let to = rng.position(len);
            input.splice(to..to, chunk);
        }
        // Splice: a prefix of this input and a suffix of a seed, or a seed's chunk inserted.
        6 => {
            let other = rng.pick(seeds);
            let from = rng.position(other.len());
            if rng.below(2) == 0 {
                let cut = rng.position(len);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            } else {
                let n = rng.length(other.len() - from);
                let n = n.min(other.len() - from);
                let at = rng.position(len);
                input.splice(at..at, other[from..from + n].iter().copied());
            }
        }
        // Repeat a nesting opening, a token or a chunk of the input many times.
        7 => {
            let unit: Vec<u8> = match rng.below(3) {
                0 => rng.pick(NESTINGS).as_bytes().to_vec(),
                1 if !tokens.is_empty() => rng.pick(tokens).as_bytes().to_vec(),
                _ if len > 0 => {
                    let at = rng.below(len);
                    let n = rng.length((len - at).min(16));
                    input[at..at + n].to_vec()
                }
                _ => b"(".to_vec(),
            };
            let times = *rng.pick(&[2usize, 8, 64, 127, 128, 129, 256, 1000, 10_000, 70_000]);
            let at = rng.position(len);
            let repeated = unit.repeat(times.min(MAX_INPUT / unit.len().max(1)));
            input.splice(at..at, repeated);
        }
        // Truncate.
        8 if len > 0 => {
            let cut = rng.below(len);
            input.truncate(cut);
        }
        // Insert a token.
        9 if !tokens.is_empty() => {
            let token = rng.pick(tokens).as_bytes();
            let at = rng.position(len);
            input.splice(at..at, token.iter().copied());
        }
        // Overwrite with an integer at the edges, 1, 2, 4 or 8 bytes, either byte order.
        10 if len > 0 => {
            let value = *rng.pick(INTEGERS);
            let width = *rng.pick(&[1usize, 2, 4, 8]);
            let mut bytes = value.to_le_bytes()[..width].to_vec();
            if rng.below(2) == 0 {
                bytes.reverse();
            }
            let at = rng.below(len);
            let end = (at + width).min(len);
            input.splice(at..end, bytes);
        }
        // Replace a number (a run of digits) with one at the edges, or insert one.
        11 => {
            let number = rng.pick(NUMBERS).as_bytes();
            let digits: Vec<usize> = (0..len).filter(|&i| input[i].is_ascii_digit()).collect();
            if digits.is_empty() {
                let at = rng.position(len);
                input.splice(at..at, number.iter().copied());
            } else {
                let start = *rng.pick(&digits);
                let end = (start..len)
                    .find(|&i| !input[i].is_ascii_digit())
                    .unwrap_or(len);
                input.splice(start..end, number.iter().copied());
            }
        }
        // Remove everything after a random byte value's first occurrence, or swap two
        // chunks: what a mis-sized length field does.
        12 if len > 1 => {
            let a = rng.below(len);
            let b = rng.below(len);
            let (a, b) = (a.min(b), a.max(b));
            let n = rng.length((b - a).max(1)).min(len - b);
            if n > 0 && a + n <= b {
                let first = input[a..a + n].to_vec();
                let second = input[b..b + n].to_vec();
                input.splice(b..b + n, first);
                input.splice(a..a + n, second);
            }
        }
        // An empty input, or a mutation that did not apply: add a byte.
        _ => {
            let at = rng.position(len);
            input.insert(at, rng.next() as u8);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The binary seeds of the corpus
// ---------------------------------------------------------------------------------------

/// Writes the seeds that are not text: the Parquet files of `ingest_parquet` (in the schema
/// of the ingest dataset, `targets::ingest_definition`, and beside it) and the Flight SQL
/// tickets (protobuf `Any`) and the keys of real demo records of `ticket`. Run by hand when
/// they must change: `cargo test --test fuzz_smoke -- --ignored write_binary_seeds`.
#[test]
#[ignore = "writes the binary seeds of fuzz/corpus; run by hand when they must change"]
fn write_binary_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    seeds::parquet(&corpus.join("ingest_parquet"));
    seeds::tickets(&corpus.join("ticket"));
}

mod seeds {
    use std::path::Path;
    use std::sync::Arc;

    use dagr_engine::arrow::array::{
        Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
        Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, LargeBinaryArray,
        LargeStringArray, ListArray, RecordBatch, StringArray, StringViewArray,
        TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray, UInt8Array,
    };
    use dagr_engine::arrow::datatypes::{Field, Int32Type, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, Encoding, GzipLevel, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

    use super::targets;

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::create_dir_all(dir).expect("the corpus directory");
        std::fs::write(dir.join(name), bytes).expect("a seed is written");
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .expect("a seed batch")
    }

    fn file(batches: &[RecordBatch], props: WriterProperties) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batches[0].schema(), Some(props))
            .expect("a Parquet writer");
        for b in batches {
            writer.write(b).expect("a batch is written");
        }
        writer.close().expect("the file is closed");
        out
    }

    /// `rows` rows in the ingest dataset's schema (and types), with nulls and edge values.
    fn rows(rows: usize) -> RecordBatch {
        let definition = targets::ingest_definition();
        let schema = definition.arrow_schema();
        let edge_i64 = [i64::MAX, i64::MIN, 0, -1, 1];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("k{i}")),
            )),
            Arc::new(Int32Array::from_iter(
                (0..rows).map(|i| (i % 3 != 1).then_some(i as i32 - 1)),
            )),
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| edge_i64[i % edge_i64.len()]),
            )),
            Arc::new(UInt8Array::from_iter_values(
                (0..rows).map(|i| (i * 51) as u8),
            )),
            Arc::new(Float64Array::from_iter_values((0..rows).map(|i| {
                [
                    1.5,
                    -0.0,
                    f64::NAN,
                    f64::INFINITY,
                    f64::MAX,
                    f64::MIN_POSITIVE,
                ][i % 6]
            }))),
            Arc::new(Float32Array::from_iter(
                (0..rows).map(|i| (i % 2 == 0).then_some(i as f32 / 3.0)),
            )),
            Arc::new(
                Decimal128Array::from_iter(
                    (0..rows).map(|i| (i % 4 != 3).then_some([123_456, -1, 0][i % 3])),
                )
                .with_precision_and_scale(12, 2)
                .expect("a decimal type"),
            ),
            Arc::new(Date32Array::from_iter_values(
                (0..rows).map(|i| [19_723, 0, -719_162, 2_932_896][i % 4]),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    (0..rows).map(|i| (i % 5 != 4).then_some(1_704_103_200_000_000 + i as i64)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                (0..rows).map(|i| 1_704_103_200_123 - i as i64 * 86_400_000),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..rows).map(|i| (i % 3 != 2).then_some(i % 2 == 0)),
            )),
            Arc::new(
                (0..rows)
                    .map(|i| (i % 4 != 0).then_some(["LV", "EE", "LT"][i % 3]))
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
            Arc::new(LargeStringArray::from_iter(
                (0..rows).map(|i| (i % 2 == 1).then(|| "Rīga ".repeat(i % 5))),
            )),
            Arc::new(StringViewArray::from_iter(
                (0..rows).map(|i| Some(format!("a label longer than twelve bytes {i}"))),
            )),
            Arc::new(BinaryArray::from_iter(
                (0..rows).map(|i| (i % 3 == 0).then_some(vec![0u8, 0xff, i as u8])),
            )),
        ];
        RecordBatch::try_new(schema, columns).expect("rows of the ingest dataset")
    }

    fn with_column(batch: &RecordBatch, name: &str, column: ArrayRef) -> RecordBatch {
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(name, column.data_type().clone(), false));
        let mut columns = batch.columns().to_vec();
        columns.push(column);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("a wider batch")
    }

    fn project(batch: &RecordBatch, names: &[&str]) -> RecordBatch {
        let indices: Vec<usize> = names
            .iter()
            .map(|n| batch.schema().index_of(n).expect("a column"))
            .collect();
        batch.project(&indices).expect("a projection")
    }

    pub(super) fn parquet(dir: &Path) {
        let plain = WriterProperties::builder().build();
        let six = rows(6);
        let full = file(std::slice::from_ref(&six), plain.clone());
        write(dir, "full.parquet", &full);
        for (name, codec) in [
            ("snappy.parquet", Compression::SNAPPY),
            ("zstd.parquet", Compression::ZSTD(ZstdLevel::default())),
            ("lz4_raw.parquet", Compression::LZ4_RAW),
            ("lz4_hadoop.parquet", Compression::LZ4),
            ("gzip.parquet", Compression::GZIP(GzipLevel::default())),
        ] {
            let props = WriterProperties::builder().set_compression(codec).build();
            write(dir, name, &file(std::slice::from_ref(&six), props));
        }
        let small_groups = WriterProperties::builder()
            .set_max_row_group_row_count(Some(4))
            .set_data_page_row_count_limit(2)
            .set_write_batch_size(2)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        write(
            dir,
            "row_groups.parquet",
            &file(&[rows(10), rows(3)], small_groups),
        );
        let v2 = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_dictionary_enabled(false)
            .set_column_encoding("big".into(), Encoding::DELTA_BINARY_PACKED)
            .set_column_encoding("note".into(), Encoding::DELTA_BYTE_ARRAY)
            .set_column_encoding("raw".into(), Encoding::DELTA_LENGTH_BYTE_ARRAY)
            .set_column_encoding("f".into(), Encoding::BYTE_STREAM_SPLIT)
            .build();
        write(
            dir,
            "v2_encodings.parquet",
            &file(std::slice::from_ref(&six), v2),
        );
        let indexed = WriterProperties::builder()
            .set_bloom_filter_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_compression(Compression::SNAPPY)
            .build();
        write(dir, "bloom_page_index.parquet", &file(&[rows(8)], indexed));
        write(dir, "empty.parquet", &file(&[rows(0)], plain.clone()));
        // A change set: the dataset's columns and `_dagr_change`.
        let change: ArrayRef =
            Arc::new(StringArray::from_iter_values((0..6).map(|i| {
                ["upsert", "delete", "upsert", "merge", "delete", "upsert"][i]
            })));
        write(
            dir,
            "changes.parquet",
            &file(&[with_column(&six, "_dagr_change", change)], plain.clone()),
        );
        let deletes = project(&six, &["id"]);
        let change: ArrayRef = Arc::new(StringArray::from_iter_values((0..6).map(|_| "delete")));
        write(
            dir,
            "changes_delete_only.parquet",
            &file(
                &[with_column(&deletes, "_dagr_change", change)],
                plain.clone(),
            ),
        );
        // Columns of other types that convert (or do not, at one row or for the column).
        let other = batch(vec![
            (
                "id",
                Arc::new(LargeStringArray::from_iter_values(["a", "b", "c"])) as ArrayRef,
            ),
            ("n", Arc::new(Int64Array::from(vec![1, 2_147_483_648, -1]))),
            (
                "big",
                Arc::new(Int32Array::from(vec![Some(1), None, Some(-1)])),
            ),
            ("small", Arc::new(Int16Array::from(vec![0, 255, 256]))),
            ("f", Arc::new(Float32Array::from(vec![1.5, f32::NAN, -0.0]))),
            ("h", Arc::new(Float64Array::from(vec![1.0, 1e300, -1e-300]))),
            (
                "amount",
                Arc::new(
                    Decimal128Array::from(vec![12_345, -1, 0])
                        .with_precision_and_scale(10, 3)
                        .expect("a decimal"),
                ),
            ),
            (
                "day",
                Arc::new(StringArray::from(vec![
                    "2024-01-01",
                    "2024-02-29",
                    "2024-02-30",
                ])),
            ),
            (
                "at",
                Arc::new(
                    TimestampNanosecondArray::from(vec![1, 1_000, i64::MAX])
                        .with_timezone("+02:00"),
                ),
            ),
            (
                "local",
                Arc::new(TimestampSecondArray::from(vec![0, -1, 253_402_300_799])),
            ),
            (
                "flag",
                Arc::new(StringArray::from(vec!["true", "no", "maybe"])),
            ),
            ("code", Arc::new(StringArray::from(vec!["LV", "EE", "LT"]))),
            ("note", Arc::new(StringArray::from(vec!["x", "y", "z"]))),
            (
                "label",
                Arc::new(LargeStringArray::from(vec!["x", "y", "z"])),
            ),
            (
                "raw",
                Arc::new(LargeBinaryArray::from(vec![&b"x"[..], b"", b"\xff"])),
            ),
        ]);
        write(
            dir,
            "other_types.parquet",
            &file(std::slice::from_ref(&other), plain.clone()),
        );
        // A nested column where a flat one is defined.
        let nested = batch(vec![
            (
                "id",
                Arc::new(StringArray::from_iter_values(["a", "b"])) as ArrayRef,
            ),
            (
                "day",
                Arc::new(Date32Array::from_iter_values([1, 2])) as ArrayRef,
            ),
            (
                "note",
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1), None]),
                    None,
                ])),
            ),
        ]);
        write(
            dir,
            "nested_column.parquet",
            &file(&[nested], plain.clone()),
        );
        write(
            dir,
            "missing_columns.parquet",
            &file(&[project(&six, &["id", "day"])], plain.clone()),
        );
        let extra: ArrayRef = Arc::new(Int32Array::from_iter_values(0..6));
        write(
            dir,
            "extra_column.parquet",
            &file(&[with_column(&six, "extra", extra)], plain.clone()),
        );
        // Keys: the same key twice, and a null key (in a file whose key is nullable).
        let twice = dagr_engine::arrow::compute::concat_batches(&six.schema(), [&six, &six])
            .expect("the rows twice");
        write(
            dir,
            "duplicate_keys.parquet",
            &file(&[twice], plain.clone()),
        );
        let null_key = batch(vec![
            (
                "id",
                Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![Some(1), None])) as ArrayRef,
            ),
        ]);
        write(dir, "null_key.parquet", &file(&[null_key], plain));
        // Broken files.
        write(dir, "magic_only.parquet", b"PAR1");
        write(dir, "magics.parquet", b"PAR1PAR1");
        write(dir, "truncated_footer.parquet", &full[..full.len() - 9]);
        write(dir, "truncated_half.parquet", &full[..full.len() / 2]);
        write(dir, "no_head_magic.parquet", &full[4..]);
        let mut corrupt = full.clone();
        for i in (full.len() / 5..full.len() / 2).step_by(97) {
            corrupt[i] ^= 0x5a;
        }
        write(dir, "corrupt_pages.parquet", &corrupt);
        // The footer's length field (before the closing magic) made huge.
        let mut huge = full.clone();
        let at = huge.len() - 8;
        huge[at..at + 4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        write(dir, "huge_footer_length.parquet", &huge);
    }

    // ---- protobuf, by hand: field numbers and wire types of Flight SQL's messages

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A length-delimited field.
    fn bytes_field(number: u64, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(number << 3 | 2, &mut out);
        varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }

    fn varint_field(number: u64, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(number << 3, &mut out);
        varint(value, &mut out);
        out
    }

    /// `Any { type_url, value }` of a Flight SQL message.
    fn any(message: &str, value: &[u8]) -> Vec<u8> {
        let mut out = bytes_field(
            1,
            format!("type.googleapis.com/arrow.flight.protocol.sql.{message}").as_bytes(),
        );
        out.extend(bytes_field(2, value));
        out
    }

    pub(super) fn tickets(dir: &Path) {
        let statement = |sql: &[u8]| any("TicketStatementQuery", &bytes_field(1, sql));
        write(
            dir,
            "sql_statement.pb",
            &statement(b"SELECT personal_code, given_name FROM persons LIMIT 3"),
        );
        write(
            dir,
            "sql_statement_hidden.pb",
            &statement(b"SELECT email FROM persons"),
        );
        write(
            dir,
            "sql_statement_invalid_utf8.pb",
            &statement(b"SELECT '\xff\xfe' FROM persons"),
        );
        write(
            dir,
            "sql_statement_deep.pb",
            &statement(format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500)).as_bytes()),
        );
        write(
            dir,
            "sql_command_statement.pb",
            &any("CommandStatementQuery", &bytes_field(1, b"SELECT 1")),
        );
        write(
            dir,
            "sql_prepared_unknown.pb",
            &any(
                "CommandPreparedStatementQuery",
                &bytes_field(1, b"no such handle"),
            ),
        );
        write(dir, "sql_catalogs.pb", &any("CommandGetCatalogs", b""));
        let mut schemas = bytes_field(1, b"dagr");
        schemas.extend(bytes_field(2, b"pub%"));
        write(
            dir,
            "sql_db_schemas.pb",
            &any("CommandGetDbSchemas", &schemas),
        );
        let mut tables = bytes_field(1, b"dagr");
        tables.extend(bytes_field(2, b"%"));
        tables.extend(bytes_field(3, b"pers_n%"));
        tables.extend(bytes_field(4, b"TABLE"));
        tables.extend(varint_field(5, 1));
        write(dir, "sql_tables.pb", &any("CommandGetTables", &tables));
        write(dir, "sql_table_types.pb", &any("CommandGetTableTypes", b""));
        let mut keys = bytes_field(1, b"dagr");
        keys.extend(bytes_field(2, b"public"));
        keys.extend(bytes_field(3, b"persons"));
        write(
            dir,
            "sql_primary_keys.pb",
            &any("CommandGetPrimaryKeys", &keys),
        );
        let mut info = Vec::new();
        for id in [0u64, 1, 2, 3, 500, 501, 4_294_967_295] {
            varint(id, &mut info);
        }
        write(
            dir,
            "sql_info.pb",
            &any("CommandGetSqlInfo", &bytes_field(1, &info)),
        );
        write(
            dir,
            "sql_xdbc_type_info.pb",
            &any("CommandGetXdbcTypeInfo", &varint_field(1, u64::MAX)),
        );
        let mut cross = bytes_field(3, b"persons");
        cross.extend(bytes_field(6, b"real_estate"));
        write(
            dir,
            "sql_cross_reference.pb",
            &any("CommandGetCrossReference", &cross),
        );
        let mut unknown = bytes_field(1, b"type.googleapis.com/nope.Nope");
        unknown.extend(bytes_field(2, b"\x0a\x03abc"));
        write(dir, "sql_unknown_type.pb", &unknown);
        let mut truncated = statement(b"SELECT 1");
        truncated.truncate(truncated.len() - 3);
        write(dir, "sql_truncated.pb", &truncated);
        let mut overlong = bytes_field(1, b"x");
        overlong.extend([
            0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ]);
        write(dir, "sql_overlong_length.pb", &overlong);
        // Keys of records the demo engine holds, so that lookups find something.
        let demo = dagr_engine::demo::generate(&dagr_engine::demo::DemoConfig {
            persons: targets::DEMO_PERSONS,
            seed: dagr_engine::demo::DEFAULT_SEED,
        })
        .expect("the demo data");
        let key = |dataset: &str, column: &str, rows: &[usize]| -> Vec<String> {
            let d = demo
                .iter()
                .find(|d| d.definition.name == dataset)
                .expect("a demo register");
            let b = &d.batches[0];
            let c = b
                .column(b.schema().index_of(column).expect("the key column"))
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("a string key")
                .clone();
            rows.iter().map(|&i| c.value(i).to_owned()).collect()
        };
        let persons = key("persons", "personal_code", &[0, 1, 299]);
        write(
            dir,
            "keys_found.json",
            serde_json::json!({"dataset": "persons", "keys": persons, "columns": ["given_name"]})
                .to_string()
                .as_bytes(),
        );
        let estates = key("real_estate", "cadastre_number", &[0, 5]);
        write(
            dir,
            "keys_found_real_estate.json",
            serde_json::json!({"dataset": "real_estate", "keys": estates, "compression": "lz4"})
                .to_string()
                .as_bytes(),
        );
    }
}
