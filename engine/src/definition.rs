//! Dataset definitions: what a register publishes, validated once when it is registered.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest name accepted for a dataset or an attribute.
pub const MAX_NAME_LEN: usize = 63;

/// Longest type string accepted (`Dictionary(Int32, Utf8)`, `Timestamp(µs, "Europe/Riga")`).
pub const MAX_TYPE_LEN: usize = 256;

/// Deepest bracket nesting accepted in a type string. Arrow's type parser recurses per level:
/// without a bound, a string of tens of thousands of `List(` overflows the stack and aborts
/// the process. Attribute types are flat (a dictionary of a flat type at most), so a few
/// levels are plenty.
pub const MAX_TYPE_DEPTH: usize = 8;

/// Parse an Arrow type string (as `DataType`'s `Display` writes it), refusing strings over
/// [`MAX_TYPE_LEN`] bytes or nested deeper than [`MAX_TYPE_DEPTH`] before the recursive
/// parser sees them. The error names the limit.
pub fn parse_data_type(text: &str) -> std::result::Result<DataType, String> {
    check_type_string(text)?;
    DataType::from_str(text).map_err(|e| format!("unknown type `{text}`: {e}"))
}

/// The length and nesting limits of [`parse_data_type`], for other parsers of type strings
/// (such as a type inside SQL's `arrow_cast`).
pub fn check_type_string(text: &str) -> std::result::Result<(), String> {
    if text.len() > MAX_TYPE_LEN {
        return Err(format!(
            "the type is {} bytes long; at most {MAX_TYPE_LEN} are accepted",
            text.len()
        ));
    }
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' | '<' | '{' => {
                depth += 1;
                if depth > MAX_TYPE_DEPTH {
                    return Err(format!(
                        "the type is nested more than {MAX_TYPE_DEPTH} levels deep"
                    ));
                }
            }
            ')' | ']' | '>' | '}' => depth = depth.saturating_sub(1),
            // Arrow writes a time zone escaped and reads it back unescaped: a backslash or a
            // control character would not survive a save and a restart (found by fuzzing).
            '\\' => return Err("a type may not contain a backslash".into()),
            c if c.is_control() => {
                return Err("a type may not contain control characters".into());
            }
            _ => {}
        }
    }
    Ok(())
}
/// Most attributes a dataset may have.
pub const MAX_ATTRIBUTES: usize = 1024;

/// One attribute (column) of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// Column name: lower-case snake_case (`[a-z][a-z0-9_]*`), so SQL never needs quoting.
    pub name: String,
    /// Arrow data type, written in Arrow's display form (`Utf8`, `Int64`, `Date32`, ...).
    #[serde(with = "data_type_serde", rename = "type")]
    pub data_type: DataType,
    /// Whether the column may hold nulls. Primary-key columns never may.
    #[serde(default = "default_true")]
    pub nullable: bool,
    /// What the attribute means, for the catalog.
    #[serde(default)]
    pub description: String,
    /// Whether the attribute is personal data (its reads are audited).
    #[serde(default)]
    pub personal: bool,
    /// For a personal attribute: the column that holds the identifier of the data subject
    /// the value is about (e.g. `personal_code`). Required when `personal` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

fn default_true() -> bool {
    true
}

impl Attribute {
    /// A non-personal, nullable attribute.
    pub fn new(
        name: impl Into<String>,
        data_type: DataType,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            data_type,
            nullable: true,
            description: description.into(),
            personal: false,
            subject: None,
        }
    }

    /// Mark the attribute as personal data about the subject identified by `subject_column`.
    pub fn personal(mut self, subject_column: impl Into<String>) -> Self {
        self.personal = true;
        self.subject = Some(subject_column.into());
        self
    }

    /// Mark the attribute as never null.
    pub fn required(mut self) -> Self {
        self.nullable = false;
        self
    }
}

/// The definition of a dataset (a register): its identity, owner, schema and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetDefinition {
    /// Dataset name, same rules as attribute names.
    pub name: String,
    /// The organisation that owns the dataset (its data steward).
    pub owner: String,
    /// What the dataset holds.
    #[serde(default)]
    pub description: String,
    /// Primary-key column names, in key order.
    pub primary_key: Vec<String>,
    /// Attributes in column order.
    pub attributes: Vec<Attribute>,
}

/// Whether a primary-key column may have this type.
pub(crate) fn is_key_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

/// Whether `t` is one of Arrow's string types (`Utf8`, `LargeUtf8`, `Utf8View`).
pub fn is_string_type(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether `t` is one of Arrow's variable-length binary types (`Binary`, `LargeBinary`,
/// `BinaryView`).
pub fn is_binary_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// Whether `t` is one of Arrow's decimal types, of any width.
pub fn is_decimal_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

/// Types an attribute may have: everything but nested, union, run-end encoded and null
/// types (dictionaries of flat types are fine).
pub(crate) fn is_flat_type(t: &DataType) -> bool {
    match t {
        DataType::Null
        | DataType::Struct(_)
        | DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..)
        | DataType::Map(..)
        | DataType::Union(..)
        | DataType::RunEndEncoded(..) => false,
        DataType::Dictionary(_, v) => is_flat_type(v),
        _ => true,
    }
}

/// Check a dataset or attribute name: `[a-z][a-z0-9_]*`, at most [`MAX_NAME_LEN`] bytes.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name `{name}` is longer than {MAX_NAME_LEN} characters"
        ));
    }
    let mut chars = name.chars();
    let first = chars.next().expect("non-empty");
    if !first.is_ascii_lowercase() {
        return Err(format!(
            "name `{name}` must start with a lower-case ASCII letter"
        ));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "name `{name}` contains `{bad}`; use lower-case ASCII letters, digits and `_`"
        ));
    }
    Ok(())
}

impl DatasetDefinition {
    /// Validate the definition: names, duplicates, key columns, subject columns.
    ///
    /// Returns a definition with primary-key columns forced non-nullable.
    pub fn validated(mut self) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidDefinition {
            dataset: self.name.clone(),
            reason,
        };
        check_name(&self.name).map_err(|r| invalid(format!("dataset {r}")))?;
        if self.owner.trim().is_empty() {
            return Err(invalid("owner organisation is empty".into()));
        }
        if self.attributes.is_empty() {
            return Err(invalid("it has no attributes".into()));
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(invalid(format!(
                "it has {} attributes; at most {MAX_ATTRIBUTES} are allowed",
                self.attributes.len()
            )));
        }
        let mut seen = HashSet::new();
        for a in &self.attributes {
            check_name(&a.name).map_err(|r| invalid(format!("attribute {r}")))?;
            if !is_flat_type(&a.data_type) {
                return Err(invalid(format!(
                    "attribute `{}` has type {}; attributes must be flat (no nested, union, run-end or null types) so that masks can hide single cells",
                    a.name, a.data_type
                )));
            }
            if !seen.insert(a.name.as_str()) {
                return Err(invalid(format!("attribute `{}` is defined twice", a.name)));
            }
        }
        if self.primary_key.is_empty() {
            return Err(invalid("primary key is empty".into()));
        }
        let mut key_seen = HashSet::new();
        for k in &self.primary_key {
            let Some(a) = self.attributes.iter().find(|a| &a.name == k) else {
                return Err(invalid(format!(
                    "primary key column `{k}` is not an attribute"
                )));
            };
            if !key_seen.insert(k.as_str()) {
                return Err(invalid(format!("primary key column `{k}` is listed twice")));
            }
            if !is_key_type(&a.data_type) {
                return Err(invalid(format!(
                    "primary key column `{k}` has type {}; keys must be strings or integers",
                    a.data_type
                )));
            }
        }
        for a in &self.attributes {
            match (&a.subject, a.personal) {
                (None, true) => {
                    return Err(invalid(format!(
                        "personal attribute `{}` does not say which column identifies its data subject",
                        a.name
                    )));
                }
                (Some(s), _) => {
                    let Some(sa) = self.attributes.iter().find(|x| &x.name == s) else {
                        return Err(invalid(format!(
                            "subject column `{s}` of attribute `{}` is not an attribute",
                            a.name
                        )));
                    };
                    if !is_key_type(&sa.data_type) {
                        return Err(invalid(format!(
                            "subject column `{s}` has type {}; subject identifiers must be strings or integers",
                            sa.data_type
                        )));
                    }
                }
                (None, false) => {}
            }
        }
        let keys: HashSet<String> = self.primary_key.iter().cloned().collect();
        for a in &mut self.attributes {
            if keys.contains(&a.name) {
                a.nullable = false;
            }
        }
        Ok(self)
    }

    /// The Arrow schema of a snapshot of this dataset.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.attributes
                .iter()
                .map(|a| Field::new(&a.name, a.data_type.clone(), a.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Column ordinal of an attribute.
    pub fn ordinal(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a.name == name)
    }

    /// Column ordinals of the primary key, in key order.
    pub fn key_ordinals(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .map(|k| self.ordinal(k).expect("validated definition"))
            .collect()
    }

    /// The attribute of that name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

mod data_type_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DataType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DataType, D::Error> {
        let s = String::deserialize(d)?;
        parse_data_type(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> DatasetDefinition {
        DatasetDefinition {
            name: "persons".into(),
            owner: "PMLP".into(),
            description: String::new(),
            primary_key: vec!["personal_code".into()],
            attributes: vec![
                Attribute::new("personal_code", DataType::Utf8, "code").personal("personal_code"),
                Attribute::new("given_name", DataType::Utf8, "name").personal("personal_code"),
                Attribute::new("municipality", DataType::Utf8, "m"),
            ],
        }
    }

    fn reason(d: DatasetDefinition) -> String {
        d.validated().unwrap_err().to_string()
    }

    #[test]
    fn deep_or_long_type_strings_are_refused_before_parsing() {
        let deep = format!("{}Int32{}", "List(".repeat(50_000), ")".repeat(50_000));
        let e = parse_data_type(&deep).unwrap_err();
        assert!(e.contains("at most 256"), "{e}");
        let nested = format!("{}Int32{}", "List(".repeat(9), ")".repeat(9));
        assert!(parse_data_type(&nested).unwrap_err().contains("8 levels"));
        assert_eq!(
            parse_data_type("Dictionary(Int32, Utf8)").unwrap(),
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        );
        let json = format!(
            r#"{{"name":"x","owner":"o","primary_key":["a"],"attributes":[{{"name":"a","type":"{deep}","description":""}}]}}"#
        );
        let e = serde_json::from_str::<DatasetDefinition>(&json).unwrap_err();
        assert!(e.to_string().contains("at most 256"), "{e}");
    }

    #[test]
    fn valid_definition_forces_key_not_null() {
        let d = def().validated().unwrap();
        assert!(!d.attributes[0].nullable);
        assert!(d.attributes[1].nullable);
        assert_eq!(d.key_ordinals(), vec![0]);
    }

    #[test]
    fn refuses_unknown_key_column() {
        let mut d = def();
        d.primary_key = vec!["id".into()];
        assert!(reason(d).contains("primary key column `id` is not an attribute"));
    }

    #[test]
    fn refuses_duplicate_and_invalid_names() {
        let mut d = def();
        d.attributes
            .push(Attribute::new("municipality", DataType::Utf8, ""));
        assert!(reason(d).contains("attribute `municipality` is defined twice"));
        let mut d = def();
        d.attributes
            .push(Attribute::new("Bad Name", DataType::Utf8, ""));
        assert!(reason(d).contains("`Bad Name`"));
        let mut d = def();
        d.name = "1x".into();
        assert!(reason(d).contains("must start with a lower-case"));
    }

    #[test]
    fn refuses_personal_without_subject_and_bad_key_type() {
        let mut d = def();
        d.attributes[2].personal = true;
        assert!(reason(d).contains("`municipality` does not say"));
        let mut d = def();
        d.attributes
            .push(Attribute::new("score", DataType::Float64, ""));
        d.primary_key = vec!["score".into()];
        assert!(reason(d).contains("keys must be strings or integers"));
    }

    #[test]
    fn serde_round_trip_keeps_types() {
        let d = def().validated().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"type\":\"Utf8\""));
        let back: DatasetDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }
}
