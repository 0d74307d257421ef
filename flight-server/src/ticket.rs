//! The JSON ticket of plain-Flight `DoGet`, for clients that do not speak SQL.
//!
//! ```json
//! {"dataset": "persons",
//!  "columns": ["personal_code", "given_name"],
//!  "filter": "municipality = 'Rīga' AND birth_date < DATE '1990-01-01'",
//!  "keys": ["010190-12345", "020285-54321"],
//!  "compression": "lz4"}
//! ```
//! Everything but `dataset` is optional: `columns` projects (default: every attribute the
//! caller may see), `filter` is a SQL predicate over the caller's visible columns (no
//! subqueries), `keys` fetches those records by primary key (a composite key is an array of
//! its parts, or a string with the parts joined by `,`), and `compression` (`lz4` or `zstd`)
//! compresses the IPC bodies. `filter` and `keys` cannot be combined. A ticket without
//! `filter` or `keys` streams the whole masked dataset, pinned to the snapshot current when
//! the stream starts.
//!
//! `{"dataset": "persons", "since": 3}` streams the caller's masked view of what changed
//! from version 3 to the current version instead: the column `_dagr_change` (`upsert` or
//! `delete`) followed by the caller's columns; a delete carries only the key. `since` takes
//! none of `columns`, `filter` and `keys`. A version no longer kept is `NOT_FOUND`, a change
//! feed that cannot be computed (the schema changed, the key is not granted) is
//! `FAILED_PRECONDITION`: the client pulls the dataset in full instead.
//!
//! The response headers of a whole-dataset or change stream say what it is:
//! `x-dagr-version` (the version streamed, or changed to), `x-dagr-from-version` (of a
//! change stream), `x-dagr-primary-key` (the key columns, comma-separated, when granted) and
//! `x-dagr-mask` (a fingerprint of the caller's grants and schema: a local copy made under
//! another fingerprint cannot be brought up to date with changes).

use serde::{Deserialize, Serialize};
use tonic::Status;

/// Longest JSON ticket accepted.
pub const MAX_TICKET_BYTES: usize = 1 << 20;
/// Most keys in one ticket.
pub const MAX_KEYS: usize = 100_000;

/// A plain-Flight `DoGet` ticket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetTicket {
    /// The dataset.
    pub dataset: String,
    /// Columns to return, in this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// A SQL predicate over visible columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Primary keys to fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<serde_json::Value>>,
    /// `lz4` or `zstd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Stream the changes since this version instead of the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

impl DatasetTicket {
    /// A ticket for the whole dataset.
    pub fn dataset(name: &str) -> Self {
        DatasetTicket {
            dataset: name.to_owned(),
            ..Default::default()
        }
    }

    /// The ticket as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse and bound a ticket.
    pub fn parse(bytes: &[u8]) -> Result<Self, Status> {
        if bytes.len() > MAX_TICKET_BYTES {
            return Err(Status::invalid_argument(format!(
                "the ticket is longer than {MAX_TICKET_BYTES} bytes"
            )));
        }
        let t: DatasetTicket = serde_json::from_slice(bytes)
            .map_err(|e| Status::invalid_argument(format!("invalid JSON ticket: {e}")))?;
        if t.filter.is_some() && t.keys.is_some() {
            return Err(Status::invalid_argument(
                "a ticket takes `filter` or `keys`, not both",
            ));
        }
        if t.since.is_some() && (t.filter.is_some() || t.keys.is_some() || t.columns.is_some()) {
            return Err(Status::invalid_argument(
                "a change ticket (`since`) takes none of `columns`, `filter` and `keys`",
            ));
        }
        if t.keys.as_ref().is_some_and(|k| k.len() > MAX_KEYS) {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_KEYS} keys per ticket"
            )));
        }
        if let Some(c) = &t.compression
            && c != "lz4"
            && c != "zstd"
        {
            return Err(Status::invalid_argument(format!(
                "compression must be `lz4` or `zstd`; got `{c}`"
            )));
        }
        Ok(t)
    }

    /// The keys as the text form the engine parses (`a,b` for composite keys).
    pub fn key_texts(&self) -> Result<Vec<String>, Status> {
        let mut out = Vec::new();
        for k in self.keys.iter().flatten() {
            out.push(match k {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Array(parts) => parts
                    .iter()
                    .map(|p| match p {
                        serde_json::Value::String(s) => Ok(s.clone()),
                        serde_json::Value::Number(n) => Ok(n.to_string()),
                        other => Err(Status::invalid_argument(format!(
                            "a key part must be a string or a number; got {other}"
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                other => {
                    return Err(Status::invalid_argument(format!(
                        "a key must be a string, a number or an array of parts; got {other}"
                    )));
                }
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_parse_and_refuse_what_they_should() {
        let t = DatasetTicket::parse(br#"{"dataset":"persons","keys":["a",1,["x",2]]}"#).unwrap();
        assert_eq!(t.key_texts().unwrap(), ["a", "1", "x,2"]);
        assert!(DatasetTicket::parse(br#"{"dataset":"p","filter":"a=1","keys":["a"]}"#).is_err());
        assert!(DatasetTicket::parse(br#"{"dataset":"p","colums":["a"]}"#).is_err());
        assert!(DatasetTicket::parse(br#"{"dataset":"p","compression":"gzip"}"#).is_err());
        assert!(DatasetTicket::parse(br#"{"dataset":"p","since":2,"keys":["a"]}"#).is_err());
        assert_eq!(
            DatasetTicket::parse(br#"{"dataset":"p","since":2}"#)
                .unwrap()
                .since,
            Some(2)
        );
        let round = DatasetTicket::dataset("persons");
        assert_eq!(DatasetTicket::parse(&round.to_bytes()).unwrap(), round);
    }
}
