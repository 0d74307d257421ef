//! MAP's vocabulary: statuses, roles, amounts, inputs and the application as the API shows
//! it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::governance::{GovError, GovResult};

/// The state of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being written by the applicant; saved, not filed.
    Draft,
    /// Filed; waiting for the completeness check.
    Submitted,
    /// Sent back to the applicant to complete; they edit and submit again.
    Returned,
    /// Complete; waiting for evaluators.
    Complete,
    /// Evaluators are assigned and scoring.
    InEvaluation,
    /// Every evaluator scored; waiting for the decision.
    Evaluated,
    /// Granted an amount; waiting for the contract.
    Approved,
    /// Refused.
    Rejected,
    /// Under contract: payments and reports.
    Contracted,
    /// Final report approved; the unpaid rest released.
    Closed,
    /// Withdrawn by the applicant before a contract.
    Withdrawn,
    /// Contract terminated, with recovery of what was paid unduly.
    Terminated,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 12] = [
        Status::Draft,
        Status::Submitted,
        Status::Returned,
        Status::Complete,
        Status::InEvaluation,
        Status::Evaluated,
        Status::Approved,
        Status::Rejected,
        Status::Contracted,
        Status::Closed,
        Status::Withdrawn,
        Status::Terminated,
    ];

    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Returned => "returned",
            Status::Complete => "complete",
            Status::InEvaluation => "in_evaluation",
            Status::Evaluated => "evaluated",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Contracted => "contracted",
            Status::Closed => "closed",
            Status::Withdrawn => "withdrawn",
            Status::Terminated => "terminated",
        }
    }

    /// Parse [`Status::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A person's role in MAP (a user of the grantor organisation may hold several).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MapRole {
    /// Runs programmes: completeness, assignment, contracts, reports, closure.
    ProgrammeManager,
    /// Scores the applications assigned to them.
    Evaluator,
    /// Decides: approves an amount or rejects.
    Approver,
    /// Approves and executes payments.
    Accountant,
}

impl MapRole {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MapRole::ProgrammeManager => "programme_manager",
            MapRole::Evaluator => "evaluator",
            MapRole::Approver => "approver",
            MapRole::Accountant => "accountant",
        }
    }

    /// Parse [`MapRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "programme_manager" => MapRole::ProgrammeManager,
            "evaluator" => MapRole::Evaluator,
            "approver" => MapRole::Approver,
            "accountant" => MapRole::Accountant,
            _ => return None,
        })
    }
}

/// The aid regime of a programme: the code of a regime in the rules (`GET
/// /api/v1/map/regimes`): `none` (not state aid), `de_minimis`, `de_minimis_sgei`,
/// `de_minimis_agriculture` by default, more as an admin adds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "de_minimis")]
pub struct AidRegime(String);

impl AidRegime {
    /// Not state aid: nothing is recorded, no ceiling applies.
    pub const NONE: &'static str = "none";

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A code: 1–40 of `a-z`, `0-9`, `_`, starting with a letter (whether a regime of
    /// that code exists is checked against the rules).
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| AidRegime(s.to_owned()))
    }

    /// Whether this is `none` (not state aid).
    pub fn is_none(&self) -> bool {
        self.0 == Self::NONE
    }
}

impl TryFrom<String> for AidRegime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        AidRegime::parse(&s).ok_or_else(|| {
            "an aid regime code is 1-40 of a-z, 0-9 and _, starting with a letter".to_owned()
        })
    }
}

impl From<AidRegime> for String {
    fn from(r: AidRegime) -> String {
        r.0
    }
}

/// An aid regime to create or change (`PUT /api/v1/map/regimes/{code}`, an admin).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegimeInput {
    /// Code (from the path).
    #[serde(skip_deserializing, default = "none_regime")]
    pub code: AidRegime,
    /// Title.
    pub title: String,
    /// The legal act and article the rule comes from.
    pub legal_basis: String,
    /// Ceiling per undertaking (EUR); absent: none.
    #[serde(default)]
    pub ceiling: Option<f64>,
    /// The period the ceiling covers, in days (default 1 096: any three years).
    #[serde(default)]
    pub window_days: Option<i64>,
    /// Regimes whose aid counts toward the ceiling (default: this one).
    #[serde(default)]
    pub counts: Option<Vec<AidRegime>>,
}

fn none_regime() -> AidRegime {
    AidRegime(AidRegime::NONE.to_owned())
}

/// The regime whose totals `GET .../undertakings/{rn}/aid` shows at its top level.
pub const DE_MINIMIS: &str = "de_minimis";

/// Largest amount MAP accepts, in cents (EUR 10 billion): far above any programme, far
/// below where sums of cents overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// An amount in euro (a JSON number, at most two decimals) as cents; 422 naming `field`
/// when negative, not finite, too precise or too large.
pub fn cents(field: &str, eur: f64) -> GovResult<i64> {
    let invalid = |reason: &str| GovError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    if !eur.is_finite() || eur < 0.0 {
        return Err(invalid("must be a non-negative amount in euro"));
    }
    let c = (eur * 100.0).round();
    if (c - eur * 100.0).abs() > 1e-6 * c.max(1.0) {
        return Err(invalid("has more than two decimals (cents)"));
    }
    if c > MAX_AMOUNT as f64 {
        return Err(invalid("exceeds EUR 10 000 000 000"));
    }
    Ok(c as i64)
}

/// Cents as euro, for JSON.
pub fn eur(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// A named eligibility condition: a predicate over the attributes of `companies`, like a
/// row scope (`status = 'active' AND employees < 250`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Short name, shown in refusals.
    pub name: String,
    /// The predicate.
    pub predicate: String,
}

/// Eligibility as given: one predicate, or named conditions.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EligibilityInput {
    /// One predicate, named `eligibility`.
    One(String),
    /// Named conditions, all of which must hold.
    Many(Vec<Condition>),
}

/// A scoring criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Code, unique in the scoresheet.
    pub code: String,
    /// Weight (> 0).
    pub weight: f64,
    /// Lowest points (default 0).
    #[serde(default)]
    pub min: f64,
    /// Highest points.
    pub max: f64,
}

/// A level of payment approval: who approves, from which amount on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalLevel {
    /// The role that approves at this level.
    pub role: MapRole,
    /// The level applies to payments of at least this amount (EUR; default 0: all).
    #[serde(default)]
    pub from_amount: f64,
}

/// A report due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportDue {
    /// `interim` or `final`.
    pub kind: String,
    /// Months after the contract.
    pub months_after_contract: u32,
}

/// A new programme.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgramme {
    /// Title.
    pub title: String,
    /// Budget (EUR).
    pub budget: f64,
    /// Largest grant to one application (EUR).
    pub max_grant: f64,
    /// Share of eligible costs the grant may cover, 0–1 (default 1).
    #[serde(default)]
    pub co_financing_rate: Option<f64>,
    /// Applications are accepted from (RFC 3339 or a date).
    pub opens_at: String,
    /// Applications are accepted until (RFC 3339, or a date meaning its end).
    pub closes_at: String,
    /// The code of an aid regime (`GET /api/v1/map/regimes`), `none` when not state aid.
    pub aid_regime: AidRegime,
    /// Eligibility conditions over `companies`.
    pub eligibility: EligibilityInput,
    /// The scoresheet.
    pub criteria: Vec<Criterion>,
    /// Evaluators per application (1–9).
    pub evaluators_per_application: u32,
    /// Cost categories (free names).
    #[serde(default)]
    pub cost_categories: Vec<String>,
    /// Payment approval levels; default: a programme manager, then an accountant.
    #[serde(default)]
    pub approval_levels: Option<Vec<ApprovalLevel>>,
    /// Reports due.
    #[serde(default)]
    pub report_schedule: Vec<ReportDue>,
}

/// A programme as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Programme {
    /// Id.
    pub id: i64,
    /// The grantor organisation.
    pub organisation: String,
    /// Title.
    pub title: String,
    /// Budget (EUR).
    pub budget: f64,
    /// Largest grant (EUR).
    pub max_grant: f64,
    /// Co-financing rate, 0–1.
    pub co_financing_rate: f64,
    /// Opens.
    pub opens_at: String,
    /// Closes.
    pub closes_at: String,
    /// Aid regime.
    pub aid_regime: AidRegime,
    /// Eligibility conditions.
    pub eligibility: Vec<Condition>,
    /// The current scoresheet.
    pub criteria: Vec<Criterion>,
    /// Its version.
    pub scoresheet_version: i64,
    /// Evaluators per application.
    pub evaluators_per_application: i64,
    /// Cost categories.
    pub cost_categories: Vec<String>,
    /// Payment approval levels.
    pub approval_levels: Vec<ApprovalLevel>,
    /// Reports due.
    pub report_schedule: Vec<ReportDue>,
    /// Granted by decisions and not released (EUR).
    pub committed: f64,
    /// Paid (EUR).
    pub paid: f64,
    /// Recovered (EUR).
    pub recovered: f64,
    /// Budget not committed (EUR).
    pub remaining: f64,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: String,
}

/// The applicant company, pre-filled from `companies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Applicant {
    /// Registration number.
    pub registration_number: String,
    /// Registered name.
    pub name: String,
    /// Legal form.
    pub legal_form: String,
    /// Register status.
    pub status: String,
}

/// The register read behind a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// `prefill`, `represent`, `submit`, `decision`, `payment`, `closure`, `conflict`.
    pub step: String,
    /// The dataset read.
    pub dataset: String,
    /// Its snapshot version.
    pub version: i64,
    /// When.
    pub read_at: String,
    /// Ids of the access records in the usage audit (empty when nothing personal was read).
    pub access_record: Vec<String>,
    /// Whether the check held.
    pub passed: bool,
    /// The values read.
    #[schema(value_type = Object)]
    pub values: serde_json::Value,
}

/// One evaluator's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Score {
    /// The evaluator's login.
    pub evaluator: String,
    /// Points per criterion code.
    #[schema(value_type = Object)]
    pub points: std::collections::BTreeMap<String, f64>,
    /// Why.
    pub justification: String,
    /// When.
    pub at: String,
}

/// A payment request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    /// Id.
    pub id: i64,
    /// Amount (EUR).
    pub amount: f64,
    /// `submitted`, `in_approval`, `approved` or `paid`.
    pub status: String,
    /// Approval levels passed.
    pub approvals: Vec<String>,
}

/// A report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    /// Id.
    pub id: i64,
    /// `interim` or `final`.
    pub kind: String,
    /// `submitted` or `approved`.
    pub status: String,
    /// Eligible costs (EUR).
    pub eligible_costs: f64,
}

/// A registered document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Document {
    /// Registration number (`MAP-2026/000123`), gapless per year.
    pub number: String,
    /// Date (YYYY-MM-DD).
    pub date: String,
    /// `incoming` or `outgoing`.
    pub direction: String,
    /// What it is.
    pub kind: String,
}

/// An application as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Application {
    /// Id.
    pub id: i64,
    /// The programme.
    pub programme: i64,
    /// Status.
    pub status: Status,
    /// Title.
    pub title: String,
    /// Requested amount (EUR).
    pub requested_amount: f64,
    /// Granted amount (EUR), once approved.
    pub granted_amount: Option<f64>,
    /// Σ weight × mean points / Σ weights, once every evaluator scored.
    pub score: Option<f64>,
    /// The applicant company, from the register.
    pub applicant: Applicant,
    /// The scoresheet version it is scored on.
    pub scoresheet_version: Option<i64>,
    /// The evaluators assigned.
    pub evaluators: Vec<String>,
    /// Register reads behind each check.
    pub evidence: Vec<Evidence>,
    /// Scores: each evaluator sees their own until every score is in; then all see all.
    pub scores: Vec<Score>,
    /// Payments.
    pub payments: Vec<Payment>,
    /// Reports.
    pub reports: Vec<Report>,
    /// Registered documents.
    pub documents: Vec<Document>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// A new application, as the applicant files it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// The programme.
    pub programme: i64,
    /// The company's registration number; its data comes from the register.
    pub registration_number: String,
    /// Title.
    pub title: String,
    /// Requested amount (EUR).
    pub requested_amount: f64,
}

/// An action on an application (`POST /applications/{id}/transitions`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Programme manager: back to the applicant to complete.
    Return {
        /// Why.
        reason: String,
    },
    /// Programme manager: complete; ready for evaluators.
    Accept,
    /// Programme manager: assign an evaluator (conflicts detected).
    Assign {
        /// The evaluator's login.
        evaluator: String,
    },
    /// Evaluator: declare whether they have a conflict of interest (before opening).
    Declare {
        /// `true` withdraws them from the application.
        conflict: bool,
    },
    /// Evaluator: score every criterion.
    Score {
        /// Points per criterion code.
        points: BTreeMap<String, f64>,
        /// Why.
        justification: String,
    },
    /// Approver: grant an amount.
    Approve {
        /// Amount (EUR).
        amount: f64,
        /// Why.
        reason: String,
    },
    /// Approver: refuse.
    Reject {
        /// Why.
        reason: String,
    },
    /// Programme manager: sign the contract.
    Contract,
    /// Applicant: ask for a payment.
    RequestPayment {
        /// Amount (EUR).
        amount: f64,
    },
    /// The role of the payment's next approval level: approve it.
    ApprovePayment {
        /// The payment.
        payment: i64,
    },
    /// Accountant: pay an approved payment.
    Pay {
        /// The payment.
        payment: i64,
    },
    /// Applicant: file a report.
    Report {
        /// `interim` or `final`.
        kind: String,
        /// Eligible costs (EUR).
        eligible_costs: f64,
        /// The report.
        text: String,
        /// The invoices claimed; an invoice may be claimed in one project only.
        #[serde(default)]
        costs: Vec<Cost>,
    },
    /// Programme manager: approve a report.
    ApproveReport {
        /// The report.
        report: i64,
    },
    /// Programme manager: close after the final report; the unpaid rest is released.
    Close,
    /// Programme manager: terminate the contract, recovering what was paid unduly.
    Terminate {
        /// Why.
        reason: String,
        /// Amount to recover (EUR), at most what was paid.
        recovery: f64,
    },
    /// Applicant: withdraw before a contract.
    Withdraw,
}

/// An invoice claimed in a report.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// The supplier's registration number.
    pub supplier: String,
    /// The invoice number.
    pub invoice: String,
    /// Amount (EUR).
    pub amount: f64,
}

/// One place in a programme's ranking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ranked {
    /// 1 for the best score; equal scores share a rank.
    pub rank: usize,
    /// The application.
    pub application: ApplicationSummaryRef,
    /// The budget still uncommitted if every application ranked above and this one were
    /// approved as requested (EUR); negative once the budget is exhausted.
    pub remaining_if_funded: f64,
}

/// The fields of an application the ranking shows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApplicationSummaryRef {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// The company.
    pub registration_number: String,
    /// Its name.
    pub applicant_name: String,
    /// Requested (EUR).
    pub requested_amount: f64,
    /// Score.
    pub score: Option<f64>,
}

/// One decision of a bulk call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDecision {
    /// The application (of the programme).
    pub application: i64,
    /// `approve` (with `amount`) or `reject`.
    pub decision: String,
    /// The amount to grant (EUR), for `approve`.
    #[serde(default)]
    pub amount: Option<f64>,
    /// Why.
    pub reason: String,
}

/// What became of one decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkOutcome {
    /// The application.
    pub application: i64,
    /// The HTTP status the decision alone would have had (200, 403, 404, 409, 422).
    pub status: u16,
    /// The application's status after (when decided), or why not.
    pub detail: String,
}
