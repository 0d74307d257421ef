//! Register reads of MAP: the company's record, who may represent it, an evaluator's
//! relations to it, and the eligibility conditions. Each read runs as SQL through the engine
//! under the grantor's MAP system ([`Grantor::principal`]): the engine compiles that
//! system's agreements into a masked view, so MAP sees only what the register owners
//! granted it, and loses the data the moment an agreement is revoked. Personal data read is
//! committed to the usage audit (its purpose names the application) before MAP uses it, and
//! the access record ids are kept in the evidence.

use std::sync::Arc;

use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::{AccessPolicy, AuditContext, AuditSink, Channel, Principal, ReadLog, Role};
use serde_json::{Map, Value};

use crate::AppState;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::model::{Applicant, Condition};

/// The dataset of companies (UR).
pub(crate) const COMPANIES: &str = "companies";
/// The dataset of companies' officials (UR).
pub(crate) const OFFICIALS: &str = "officials";
/// The roles of `officials`, the last part of its primary key.
const OFFICIAL_ROLES: [&str; 3] = ["board_member", "shareholder", "beneficial_owner"];

/// A grantor organisation and the consumer system MAP reads under for it.
#[derive(Debug, Clone)]
pub(crate) struct Grantor {
    /// The organisation's code.
    pub(crate) organisation: String,
    /// Its MAP system.
    pub(crate) system: i64,
}

impl Grantor {
    /// The principal MAP reads as: the grantor's MAP system (so only that system's
    /// agreements apply), naming the person who acts when one does.
    pub(crate) fn principal(&self, acting: Option<&str>) -> Principal {
        Principal {
            role: Role::Consumer,
            organisation: Some(self.organisation.clone()),
            system: Some(self.system.to_string()),
            subject: None,
            user: acting.map(str::to_owned),
            token_id: None,
        }
    }
}

/// One read: what it read, from which snapshot, its access records, the rows.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    /// The dataset.
    pub(crate) dataset: String,
    /// The snapshot version.
    pub(crate) version: i64,
    /// When.
    pub(crate) read_at: Time,
    /// Access record ids (empty when nothing personal was read).
    pub(crate) access_records: Vec<String>,
    /// The rows, as JSON objects.
    pub(crate) rows: Vec<Map<String, Value>>,
}

/// A registration number: 11 digits.
pub(crate) fn check_registration_number(rn: &str) -> GovResult<()> {
    if rn.len() == 11 && rn.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(GovError::Invalid {
            field: "registration_number".into(),
            reason: "must be the 11 digits of a company's registration number".into(),
        })
    }
}

/// A Latvian personal code: `DDDDDD-DDDDD`.
pub(crate) fn check_personal_code(field: &str, code: &str) -> GovResult<()> {
    let b = code.as_bytes();
    let ok = b.len() == 12
        && b[6] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 6 || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(GovError::Invalid {
            field: field.into(),
            reason: "must be a personal code `DDDDDD-DDDDD`".into(),
        })
    }
}

/// `s` as an SQL string literal (the inputs are checked before, this is the second fence).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Reads registers for one grantor.
pub(crate) struct Registers<'a> {
    state: &'a AppState,
    grantor: &'a Grantor,
    acting: Option<&'a str>,
}

impl<'a> Registers<'a> {
    /// Reads for `grantor`, on behalf of the person `acting` (a staff login) if any.
    pub(crate) fn new(state: &'a AppState, grantor: &'a Grantor, acting: Option<&'a str>) -> Self {
        Registers {
            state,
            grantor,
            acting,
        }
    }

    /// Run `sql` (reading `dataset`) under the grantor's MAP system and commit its access
    /// records with `purpose`. A dataset the system has no agreement on is a 409 that says
    /// so: MAP cannot check what it may not read.
    async fn read(&self, dataset: &str, sql: String, purpose: String) -> GovResult<Read> {
        let principal = self.grantor.principal(self.acting);
        let access = self.state.gov.policy().access(&principal);
        let engine = Arc::clone(&self.state.engine);
        let result = engine
            .query(&sql, &access)
            .await
            .map_err(|e| self.cannot(dataset, e))?;
        let version = result
            .datasets
            .iter()
            .find(|(d, _)| d == dataset)
            .map_or(0, |(_, v)| *v as i64);
        let reads = result.reads.clone();
        let batches = result.collect().await?;
        self.finish(dataset, version, &batches, &reads, principal, purpose, sql)
            .await
    }

    /// Look rows of `dataset` up by primary key (`keys` as the REST API writes them, parts
    /// joined by `,`) under the grantor's MAP system, like [`Registers::read`] without a query
    /// plan; `needs` are the attributes the check reads, which the agreement must grant.
    async fn lookup(
        &self,
        dataset: &str,
        keys: &[String],
        needs: &[&str],
        purpose: String,
    ) -> GovResult<Read> {
        let principal = self.grantor.principal(self.acting);
        let access = self.state.gov.policy().access(&principal);
        let reads = ReadLog::new();
        let view = self
            .state
            .engine
            .view(dataset, &access)
            .map_err(|e| self.cannot(dataset, e))?
            .with_log(reads.clone());
        view.note_projection(None);
        let keys = keys
            .iter()
            .map(|k| view.snapshot.parse_key(k))
            .collect::<dagr_engine::Result<Vec<_>>>()?;
        let batch = view
            .lookup_many(&keys)
            .map_err(|e| self.cannot(dataset, e))?;
        if let Some(missing) = needs
            .iter()
            .find(|c| batch.schema().column_with_name(c).is_none())
        {
            return Err(self.cannot(
                dataset,
                dagr_engine::Error::AttributeNotVisible(format!("`{missing}` is not granted")),
            ));
        }
        let version = view.snapshot.version() as i64;
        let query = format!("MAP lookup of {dataset} by key {}", keys.len());
        self.finish(
            dataset,
            version,
            &[batch],
            &reads,
            principal,
            purpose,
            query,
        )
        .await
    }

    /// The refusal when the MAP system may not read what a check needs.
    fn cannot(&self, dataset: &str, e: dagr_engine::Error) -> GovError {
        match e {
            dagr_engine::Error::DatasetNotFound(_)
            | dagr_engine::Error::NoSnapshot(_)
            | dagr_engine::Error::AccessDenied(_)
            | dagr_engine::Error::AttributeNotVisible(_)
            | dagr_engine::Error::InvalidQuery(_) => GovError::Conflict(format!(
                "MAP cannot read `{dataset}` for {}: its system {} has no agreement that grants what the check needs ({e})",
                self.grantor.organisation, self.grantor.system
            )),
            other => GovError::Engine(other),
        }
    }

    /// The rows as JSON, and the access records of what was read committed with `purpose`
    /// before anything uses them.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        dataset: &str,
        version: i64,
        batches: &[RecordBatch],
        reads: &ReadLog,
        principal: Principal,
        purpose: String,
        query: String,
    ) -> GovResult<Read> {
        let mut rows = Vec::new();
        for b in batches {
            rows.extend(
                crate::handlers::batch_to_objects(b)
                    .map_err(|e| GovError::Engine(dagr_engine::Error::Internal(e.to_string())))?,
            );
        }
        let context = Arc::new(AuditContext {
            principal,
            purpose: Some(purpose),
            channel: Channel::Rest,
            request_id: dagr_engine::audit::request_id(None),
            query,
        });
        let records = reads.take_records(&context);
        let access_records = if records.is_empty() {
            Vec::new()
        } else {
            AuditSink::commit(&self.state.audit, records)
                .await
                .map_err(|e| {
                    GovError::Engine(dagr_engine::Error::AuditUnavailable(e.to_string()))
                })?
        };
        Ok(Read {
            dataset: dataset.to_owned(),
            version,
            read_at: Time::now(),
            access_records,
            rows,
        })
    }

    /// The company's record, for pre-filling an application.
    pub(crate) async fn company(
        &self,
        rn: &str,
        purpose: String,
    ) -> GovResult<(Read, Option<Applicant>)> {
        check_registration_number(rn)?;
        let read = self
            .lookup(
                COMPANIES,
                &[rn.to_owned()],
                &["registration_number", "name", "legal_form", "status"],
                purpose,
            )
            .await?;
        let applicant = read.rows.first().map(|r| Applicant {
            registration_number: text(r, "registration_number"),
            name: text(r, "name"),
            legal_form: text(r, "legal_form"),
            status: text(r, "status"),
        });
        Ok((read, applicant))
    }

    /// The person's rows in `officials` for the company (every role they hold).
    pub(crate) async fn relations(&self, rn: &str, code: &str, purpose: String) -> GovResult<Read> {
        check_registration_number(rn)?;
        check_personal_code("personal_code", code)?;
        // The key is (registration_number, personal_code, role): one lookup per role.
        let keys: Vec<String> = OFFICIAL_ROLES
            .iter()
            .map(|role| format!("{rn},{code},{role}"))
            .collect();
        self.lookup(
            OFFICIALS,
            &keys,
            &["registration_number", "personal_code", "role", "represents"],
            purpose,
        )
        .await
    }

    /// The eligibility conditions evaluated on the company's record: one boolean column per
    /// condition (`c0`, `c1`, ...) next to the attributes they name.
    pub(crate) async fn eligibility(
        &self,
        rn: &str,
        conditions: &[Condition],
        purpose: String,
    ) -> GovResult<(Read, Vec<(String, bool)>)> {
        check_registration_number(rn)?;
        let mut cols = vec!["registration_number".to_owned(), "status".to_owned()];
        for (i, c) in conditions.iter().enumerate() {
            cols.push(format!("({}) AS c{i}", c.predicate));
        }
        let sql = format!(
            "SELECT {} FROM {COMPANIES} WHERE registration_number = {}",
            cols.join(", "),
            lit(rn)
        );
        let read = self.read(COMPANIES, sql, purpose).await?;
        let outcome = conditions
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let held = read
                    .rows
                    .first()
                    .and_then(|r| r.get(&format!("c{i}")))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                (c.name.clone(), held)
            })
            .collect();
        Ok((read, outcome))
    }
}

/// Check conditions against the `companies` schema as the engine sees it: each predicate
/// must be a plain expression over its attributes (the row-scope rules).
pub(crate) fn check_conditions(state: &AppState, conditions: &[Condition]) -> GovResult<()> {
    let def = state
        .engine
        .definition(COMPANIES)
        .map_err(|_| GovError::Invalid {
            field: "eligibility".into(),
            reason: format!("the register `{COMPANIES}` is not served here"),
        })?;
    let schema = def.arrow_schema();
    for c in conditions {
        dagr_engine::scope::parse(COMPANIES, &schema, &c.predicate).map_err(|e| {
            GovError::Invalid {
                field: "eligibility".into(),
                reason: format!("condition `{}`: {e}", c.name),
            }
        })?;
    }
    Ok(())
}

fn text(r: &Map<String, Value>, k: &str) -> String {
    r.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
