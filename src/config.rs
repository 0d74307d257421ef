//! The configuration file of `dagr serve` and the `dagr config` commands.
//!
//! This module owns how the command line, the environment and the TOML file given with
//! `dagr serve --config FILE` (or `DAGR_CONFIG`) become one [`Cli`]: the file's keys are the
//! long flags of `dagr serve` (`http-addr = "0.0.0.0:8080"`; `http_addr` is accepted too),
//! and the precedence is **flags > environment > file > defaults**. It does not hold a second
//! copy of the settings: every key of the file is turned into the flag it names and parsed by
//! clap with the rest, so a value in the file passes the same parsers and ranges as a flag,
//! and a flag added to [`ServeArgs`](crate::cli::ServeArgs) is a key of the file at once.
//!
//! How: [`parse_from`] parses the command line; when `serve` has a configuration file, it
//! reads the file (at most [`MAX_FILE_BYTES`]), turns each key that neither the command line
//! nor the environment sets into `--key=value` (`true` → `--key`, `false` → nothing; relative
//! paths resolved against the file's directory), inserts those arguments right after `serve`
//! and parses again. Errors name the file and the key.
//!
//! It also owns `dagr config check FILE` (the effective configuration of `dagr serve`, with
//! where each value came from, secrets redacted) and `dagr config example` (every setting with
//! its default: the example in `docs/configuration.md`). Neither opens a database or binds a
//! port.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// Largest configuration file read, in bytes (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The id of the `--config` flag of `dagr serve`: not a key of the file.
const CONFIG_ID: &str = "config";

/// `dagr config ...`
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file of `dagr serve` exactly as `dagr serve --config FILE` reads
    /// it (the environment applied too) and print the effective configuration as TOML, with
    /// where each value came from and secrets redacted. Exit code 2 when it is invalid.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print an example configuration file: every setting of `dagr serve` with its default.
    Example,
}

/// Why a command line or configuration file was refused.
#[derive(Debug)]
pub enum Error {
    /// The command line or an environment variable is invalid (or asks for help/version).
    Cli(clap::Error),
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not TOML.
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with the line and column).
        source: Box<toml::de::Error>,
    },
    /// A key that is not a flag of `dagr serve`.
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key as written.
        key: String,
        /// The closest known key, when one is close.
        suggestion: Option<String>,
    },
    /// The key `config` (a configuration file does not name another one).
    Nested {
        /// The file.
        path: PathBuf,
    },
    /// Two keys of the file name the same setting (`http-addr` and `http_addr`).
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The first key.
        first: String,
        /// The second key.
        second: String,
    },
    /// A value of the wrong TOML type for its setting.
    Type {
        /// The file.
        path: PathBuf,
        /// The key as written.
        key: String,
        /// What the setting takes.
        expected: &'static str,
    },
    /// clap refused a value of the file.
    Value {
        /// The file.
        path: PathBuf,
        /// The key the value came from, when known.
        key: Option<String>,
        /// clap's error.
        source: Box<clap::Error>,
    },
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cli(e) => write!(f, "{}", clap_message(e)),
            Error::Read { path, source } => {
                write!(
                    f,
                    "cannot read the configuration file {}: {source}",
                    path.display()
                )
            }
            Error::TooLarge { path } => write!(
                f,
                "the configuration file {} is larger than {} bytes",
                path.display(),
                MAX_FILE_BYTES
            ),
            Error::Syntax { path, source } => write!(
                f,
                "the configuration file {} is not valid TOML: {}",
                path.display(),
                source.to_string().trim_end()
            ),
            Error::UnknownKey {
                path,
                key,
                suggestion,
            } => {
                write!(
                    f,
                    "unknown key `{key}` in the configuration file {} (the keys are the long \
                     flags of `dagr serve`)",
                    path.display()
                )?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => Ok(()),
                }
            }
            Error::Nested { path } => write!(
                f,
                "the configuration file {} sets `config`: a configuration file cannot name another",
                path.display()
            ),
            Error::Duplicate {
                path,
                first,
                second,
            } => write!(
                f,
                "the configuration file {} sets one setting twice: `{first}` and `{second}`",
                path.display()
            ),
            Error::Type {
                path,
                key,
                expected,
            } => write!(
                f,
                "key `{key}` in the configuration file {}: expected {expected}",
                path.display()
            ),
            Error::Value { path, key, source } => {
                write!(f, "{}", clap_message(source))?;
                match key {
                    Some(key) => write!(
                        f,
                        "\n  the value came from the configuration file {}, key `{key}`",
                        path.display()
                    ),
                    None => write!(f, "\n  in the configuration file {}", path.display()),
                }
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Cli(e) => Some(e),
            Error::Read { source, .. } => Some(source),
            Error::Syntax { source, .. } => Some(source.as_ref()),
            Error::Value { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl Error {
    /// Print the error and end the process: clap's own errors as clap does (exit code 0 for
    /// `--help` and `--version`, 2 for usage errors), the others with exit code 2.
    pub fn exit(self) -> ! {
        match self {
            Error::Cli(e) => e.exit(),
            other => {
                eprintln!("error: {other}");
                std::process::exit(2)
            }
        }
    }
}

/// clap's message without its `error: ` prefix and its closing hints.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text.trim_start_matches("error: ");
    let first = text.split("\n\n").next().unwrap_or(text);
    first.trim_end().to_owned()
}

/// A parsed command line with its configuration file applied.
#[derive(Debug)]
pub struct Parsed {
    /// The command line.
    pub cli: Cli,
    /// clap's matches of the final parse (what [`Parsed::cli`] was made from).
    matches: ArgMatches,
    /// The file applied, when `serve` had one.
    file: Option<FileSettings>,
}

/// What a configuration file contributed.
#[derive(Debug)]
struct FileSettings {
    /// The file, as given.
    path: PathBuf,
    /// Arg id → the key of the file that set it (only the settings the file decided).
    ids: BTreeMap<String, String>,
}

/// The process's command line with `dagr serve`'s configuration file applied; on an error,
/// print it and exit (see [`Error::exit`]).
pub fn parse_cli() -> Cli {
    match parse_from(std::env::args_os()) {
        Ok(parsed) => parsed.cli,
        Err(e) => e.exit(),
    }
}

/// Parse `argv` (the program name first) and, for `dagr serve --config FILE` (or
/// `DAGR_CONFIG`), apply FILE: flags > environment > file > defaults.
pub fn parse_from<I, T>(argv: I) -> Result<Parsed>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let first = Cli::command()
        .try_get_matches_from(&argv)
        .map_err(Error::Cli)?;
    let Some(("serve", serve)) = first.subcommand() else {
        return finish(first, None);
    };
    let Some(path) = serve.get_one::<PathBuf>(CONFIG_ID).cloned() else {
        return finish(first, None);
    };
    let table = read_file(&path)?;
    let cmd = serve_command();
    let (args, ids) = file_args(&cmd, &path, &table, serve)?;
    let at = argv
        .iter()
        .skip(1)
        .position(|a| a.as_os_str() == "serve")
        .map_or(argv.len(), |i| i + 2);
    let mut full = argv;
    full.splice(at..at, args);
    let matches = Cli::command()
        .try_get_matches_from(&full)
        .map_err(|e| attribute(e, &cmd, &path, &ids))?;
    finish(matches, Some(FileSettings { path, ids }))
}

fn finish(matches: ArgMatches, file: Option<FileSettings>) -> Result<Parsed> {
    let cli = Cli::from_arg_matches(&matches).map_err(Error::Cli)?;
    Ok(Parsed { cli, matches, file })
}

/// `dagr serve`'s command, built (defaults of flags filled in, global args propagated).
fn serve_command() -> clap::Command {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand("serve")
        .cloned()
        .expect("dagr has a `serve` subcommand")
}

/// The args of `dagr serve` that a file may set: every long option but `--config`, help,
/// version and the global ones (`--log-format`).
fn settings(cmd: &clap::Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        a.get_long().is_some()
            && !a.is_positional()
            && !a.is_global_set()
            && !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
            && a.get_id().as_str() != CONFIG_ID
    })
}

/// Read and parse the file, at most [`MAX_FILE_BYTES`].
fn read_file(path: &Path) -> Result<toml::Table> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            path: path.to_owned(),
        });
    }
    text.parse::<toml::Table>().map_err(|e| Error::Syntax {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// How a setting's value is written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A flag without a value: `true` or `false`.
    Flag,
    /// A whole number.
    Integer,
    /// A number with a fraction.
    Float,
    /// A path (relative ones in a file are resolved against the file's directory).
    Path,
    /// Anything else, written as a string.
    Text,
}

fn kind(arg: &Arg) -> Kind {
    use std::any::TypeId;
    if !arg.get_action().takes_values() {
        return Kind::Flag;
    }
    let t = arg.get_value_parser().type_id();
    let integers = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<isize>(),
    ];
    if integers.iter().any(|i| t == *i) {
        Kind::Integer
    } else if t == TypeId::of::<f64>() || t == TypeId::of::<f32>() {
        Kind::Float
    } else if t == TypeId::of::<PathBuf>() {
        Kind::Path
    } else {
        Kind::Text
    }
}

/// The arguments the file's keys stand for, and which arg ids the file decided.
fn file_args(
    cmd: &clap::Command,
    path: &Path,
    table: &toml::Table,
    serve: &ArgMatches,
) -> Result<(Vec<OsString>, BTreeMap<String, String>)> {
    // Key (long flag or alias) → arg.
    let mut by_key: BTreeMap<&str, &Arg> = BTreeMap::new();
    for arg in settings(cmd) {
        by_key.insert(arg.get_long().expect("settings have a long flag"), arg);
        for alias in arg.get_all_aliases().unwrap_or_default() {
            by_key.insert(alias, arg);
        }
    }
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .or_else(|| path.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut args = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: BTreeMap<&str, &String> = BTreeMap::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        if name == CONFIG_ID {
            return Err(Error::Nested {
                path: path.to_owned(),
            });
        }
        let Some(arg) = by_key.get(name.as_str()) else {
            return Err(Error::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                suggestion: closest(&name, by_key.keys().copied()).map(str::to_owned),
            });
        };
        let id = arg.get_id().as_str();
        if let Some(first) = seen.insert(id, key) {
            return Err(Error::Duplicate {
                path: path.to_owned(),
                first: first.clone(),
                second: key.clone(),
            });
        }
        let long = arg.get_long().expect("settings have a long flag");
        let kind = kind(arg);
        let type_err = |expected| Error::Type {
            path: path.to_owned(),
            key: key.clone(),
            expected,
        };
        // Checked before the precedence below: a file is wrong or right whatever the
        // environment of the moment says.
        let text = match (kind, value) {
            (Kind::Flag, toml::Value::Boolean(b)) => b.then(String::new),
            (Kind::Flag, _) => return Err(type_err("true or false")),
            (_, toml::Value::String(s)) => Some(s.clone()),
            (_, toml::Value::Integer(i)) => Some(i.to_string()),
            (_, toml::Value::Float(x)) => Some(x.to_string()),
            (Kind::Integer, _) => return Err(type_err("a whole number")),
            (Kind::Float, _) => return Err(type_err("a number")),
            (Kind::Path, _) => return Err(type_err("a path (a string)")),
            (Kind::Text, _) => return Err(type_err("a string")),
        };
        let flag = text.map(|text| {
            let mut flag = OsString::from(format!("--{long}"));
            if kind == Kind::Flag {
                return flag;
            }
            flag.push("=");
            if kind == Kind::Path && Path::new(&text).is_relative() && !text.is_empty() {
                flag.push(dir.join(&text));
            } else {
                flag.push(&text);
            }
            flag
        });
        // Every value is checked on its own, also one that the command line or the
        // environment overrides: the file is valid or not whatever else is given.
        if let Some(flag) = &flag {
            let alone = [
                OsString::from("dagr"),
                OsString::from("serve"),
                flag.clone(),
            ];
            if let Err(e) = Cli::command().try_get_matches_from(alone)
                && e.kind() != clap::error::ErrorKind::MissingRequiredArgument
            {
                return Err(Error::Value {
                    path: path.to_owned(),
                    key: Some(key.clone()),
                    source: Box::new(e),
                });
            }
        }
        // The command line and the environment win (clap refuses a flag given twice, so a
        // key that either sets is left out rather than overridden).
        if matches!(
            serve.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        ids.insert(id.to_owned(), key.clone());
        args.extend(flag);
    }
    Ok((args, ids))
}

/// clap's error of the second parse, with the key of the file it is about.
fn attribute(
    e: clap::Error,
    cmd: &clap::Command,
    path: &Path,
    ids: &BTreeMap<String, String>,
) -> Error {
    use clap::error::{ContextKind, ContextValue};
    let long = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s
            .split_whitespace()
            .next()
            .and_then(|s| s.strip_prefix("--"))
            .map(|s| s.split('=').next().unwrap_or(s).to_owned()),
        _ => None,
    };
    let key = long.and_then(|long| {
        let arg = settings(cmd).find(|a| a.get_long() == Some(long.as_str()))?;
        ids.get(arg.get_id().as_str()).cloned()
    });
    Error::Value {
        path: path.to_owned(),
        key,
        source: Box::new(e),
    }
}

/// The candidate closest to `key` by edit distance, when close enough to be a typo.
fn closest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).clamp(1, 4);
    candidates
        .map(|c| (edit_distance(key, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance of two strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// A setting's value as TOML, secrets redacted: an arg whose environment value clap hides
/// (`--database-url`) or whose name says it is secret shows `***`, or for a URL only its
/// password hidden; a URL of any other setting has its password hidden too.
fn toml_value(arg: &Arg, kind: Kind, raw: &OsStr) -> toml::Value {
    let text = raw.to_string_lossy();
    match kind {
        Kind::Flag => toml::Value::Boolean(text == "true"),
        Kind::Integer => text.parse::<i64>().map_or_else(
            |_| toml::Value::String(text.to_string()),
            toml::Value::Integer,
        ),
        Kind::Float => text.parse::<f64>().map_or_else(
            |_| toml::Value::String(text.to_string()),
            toml::Value::Float,
        ),
        Kind::Path => toml::Value::String(text.to_string()),
        Kind::Text => {
            let id = arg.get_id().as_str();
            let secret = arg.is_hide_env_values_set()
                || ["password", "secret", "token"]
                    .iter()
                    .any(|w| id.contains(w));
            let shown = if text.contains("://") {
                // Passwords in the userinfo or the query hidden; an unparsable URL hidden.
                dagr_admin_api::store::redact(&text)
            } else if secret {
                "***".to_owned()
            } else {
                text.to_string()
            };
            toml::Value::String(shown)
        }
    }
}

/// The TOML text of a setting's values (`None` when it has none).
fn value_text(arg: &Arg, values: &[&OsStr]) -> Option<String> {
    let kind = kind(arg);
    let mut values: Vec<toml::Value> = values.iter().map(|v| toml_value(arg, kind, v)).collect();
    match values.len() {
        0 => None,
        1 => values.pop().map(|v| v.to_string()),
        _ => Some(toml::Value::Array(values).to_string()),
    }
}

/// The effective configuration of `dagr serve` in `parsed` as TOML: every setting, an unset
/// one as a comment, each with where its value came from.
pub fn effective(parsed: &Parsed) -> String {
    let cmd = serve_command();
    let Some(serve) = parsed.matches.subcommand_matches("serve") else {
        return String::new();
    };
    let from_file = |id: &str| parsed.file.as_ref().is_some_and(|f| f.ids.contains_key(id));
    let mut lines = Vec::new();
    for arg in settings(&cmd) {
        let id = arg.get_id().as_str();
        let key = arg.get_long().expect("settings have a long flag");
        let values: Vec<&OsStr> = match arg.get_action() {
            // A flag's raw value is `true` only when given; its typed value is the truth.
            ArgAction::SetTrue | ArgAction::SetFalse => match serve.try_get_one::<bool>(id) {
                Ok(Some(true)) => vec![OsStr::new("true")],
                Ok(Some(false)) => vec![OsStr::new("false")],
                _ => Vec::new(),
            },
            _ => serve.get_raw(id).map(|v| v.collect()).unwrap_or_default(),
        };
        let setting = match value_text(arg, &values) {
            Some(v) => format!("{key} = {v}"),
            None => format!("# {key} = (not set)"),
        };
        let source = if from_file(id) {
            "from file".to_owned()
        } else {
            match serve.value_source(id) {
                Some(ValueSource::EnvVariable) => format!(
                    "from env {}",
                    arg.get_env()
                        .map(OsStr::to_string_lossy)
                        .unwrap_or_default()
                ),
                Some(ValueSource::CommandLine) => "from the command line".to_owned(),
                _ => "default".to_owned(),
            }
        };
        lines.push((setting, source));
    }
    let width = lines
        .iter()
        .map(|(s, _)| s.len())
        .max()
        .unwrap_or(0)
        .min(48);
    let mut out = String::from(
        "# The effective configuration of `dagr serve` (flags > environment > file > \
         defaults;\n# secrets redacted).\n",
    );
    if let Some(file) = &parsed.file {
        out.push_str(&format!("# Configuration file: {}\n", file.path.display()));
    }
    for (setting, source) in lines {
        out.push_str(&format!("{setting:width$}  # {source}\n"));
    }
    out
}

/// An example configuration file: every setting of `dagr serve` with its help and default
/// (unset ones commented out). `docs/configuration.md` holds its output.
pub fn example() -> String {
    let cmd = serve_command();
    let mut out = String::from(
        "# Configuration of `dagr serve`: every setting with its default. The keys are the long\n\
         # flags of `dagr serve`; flags > environment > file > defaults. Relative paths are\n\
         # resolved against this file's directory. See docs/configuration.md.\n",
    );
    for arg in settings(&cmd) {
        if arg.is_hide_set() {
            continue;
        }
        out.push('\n');
        let mut help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        if !help.is_empty() && !help.ends_with('.') {
            // clap drops the period of a one-sentence help.
            help.push('.');
        }
        for line in wrap(&help, 94) {
            out.push_str(&format!("# {line}\n"));
        }
        let key = arg.get_long().expect("settings have a long flag");
        let defaults: Vec<&OsStr> = arg
            .get_default_values()
            .iter()
            .map(|v| v.as_ref())
            .collect();
        match value_text(arg, &defaults) {
            Some(v) => out.push_str(&format!("{key} = {v}\n")),
            None => out.push_str(&format!("# {key} = (not set)\n")),
        }
    }
    out
}

/// `text` in lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Run `dagr config ...`; the process's exit code.
pub fn run(cmd: &ConfigCommand) -> i32 {
    let text = match cmd {
        ConfigCommand::Example => example(),
        ConfigCommand::Check { file } => {
            let argv = [
                OsString::from("dagr"),
                OsString::from("serve"),
                OsString::from("--config"),
                file.as_os_str().to_owned(),
            ];
            match parse_from(argv) {
                Ok(parsed) => effective(&parsed),
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            }
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(edit_distance("http-addr", "http-addr"), 0);
        assert_eq!(edit_distance("htp-addr", "http-addr"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let keys = ["http-addr", "flight-addr", "data-dir"];
        assert_eq!(closest("htp-adr", keys.into_iter()), Some("http-addr"));
        assert_eq!(closest("colour", keys.into_iter()), None);
    }

    #[test]
    fn wraps_words() {
        assert_eq!(wrap("a bb ccc dd", 6), vec!["a bb", "ccc dd"]);
        assert!(wrap("", 10).is_empty());
    }
}
