//! TAPIS's vocabulary: document types and stages, the moves between stages, and the
//! documents, requests and answers as the API shows them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::governance::{GovError, GovResult};

/// A required text of 1 to `max` characters, trimmed, without control characters but new
/// lines and tabs: every text TAPIS takes from a caller.
pub fn text(field: &str, v: &str, max: usize) -> GovResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(GovError::Invalid {
            field: field.into(),
            reason: format!("give 1 to {max} characters"),
        });
    }
    if v.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(GovError::Invalid {
            field: field.into(),
            reason: "no control characters".into(),
        });
    }
    Ok(v.to_owned())
}

/// The type of a planning document (Teritorijas attīstības plānošanas likums).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocType {
    /// Ilgtspējīgas attīstības stratēģija.
    DevelopmentStrategy,
    /// Attīstības programma.
    DevelopmentProgramme,
    /// Teritorijas plānojums.
    TerritorialPlan,
    /// Lokālplānojums.
    LocalPlan,
    /// Detālplānojums.
    DetailedPlan,
    /// Tematiskais plānojums.
    ThematicPlan,
}

impl DocType {
    /// Every type.
    pub const ALL: [DocType; 6] = [
        DocType::DevelopmentStrategy,
        DocType::DevelopmentProgramme,
        DocType::TerritorialPlan,
        DocType::LocalPlan,
        DocType::DetailedPlan,
        DocType::ThematicPlan,
    ];

    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DocType::DevelopmentStrategy => "development_strategy",
            DocType::DevelopmentProgramme => "development_programme",
            DocType::TerritorialPlan => "territorial_plan",
            DocType::LocalPlan => "local_plan",
            DocType::DetailedPlan => "detailed_plan",
            DocType::ThematicPlan => "thematic_plan",
        }
    }

    /// Parse [`DocType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        DocType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The stage of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Initiated by the council's decision.
    Initiated,
    /// Institutions' conditions are asked for.
    Conditions,
    /// The draft is being written.
    Drafting,
    /// Public consultation (and institutions' opinions) is open.
    Consultation,
    /// Proposals and opinions are being evaluated.
    Evaluation,
    /// Approved by the council.
    Approved,
    /// In force.
    InForce,
    /// Cancelled.
    Cancelled,
}

impl Stage {
    /// The stages of the way, in order (`cancelled` is off it).
    pub const WAY: [Stage; 7] = [
        Stage::Initiated,
        Stage::Conditions,
        Stage::Drafting,
        Stage::Consultation,
        Stage::Evaluation,
        Stage::Approved,
        Stage::InForce,
    ];

    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Initiated => "initiated",
            Stage::Conditions => "conditions",
            Stage::Drafting => "drafting",
            Stage::Consultation => "consultation",
            Stage::Evaluation => "evaluation",
            Stage::Approved => "approved",
            Stage::InForce => "in_force",
            Stage::Cancelled => "cancelled",
        }
    }

    /// Parse [`Stage::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Stage::WAY
            .into_iter()
            .chain([Stage::Cancelled])
            .find(|t| t.as_str() == s)
    }

    fn position(self) -> Option<usize> {
        Stage::WAY.iter().position(|s| *s == self)
    }

    /// Whether no move leaves it.
    pub fn is_final(self) -> bool {
        matches!(self, Stage::InForce | Stage::Cancelled)
    }
}

/// How a move from `from` to `to` is allowed: `Ok(true)` when it needs a reason (a move
/// back, a cancellation), `Ok(false)` for the next stage, `Err` naming why not.
pub fn check_move(from: Stage, to: Stage) -> Result<bool, String> {
    if from.is_final() {
        return Err(format!(
            "the document is {}: no move leaves it",
            from.as_str()
        ));
    }
    if to == Stage::Cancelled {
        return Ok(true);
    }
    let (f, t) = (
        from.position().unwrap_or_default(),
        to.position().unwrap_or_default(),
    );
    if t == f + 1 {
        Ok(false)
    } else if t < f {
        Ok(true)
    } else if t == f {
        Err(format!("the document is {} already", from.as_str()))
    } else {
        Err(format!(
            "from {} the next stage is {}; stages are not skipped",
            from.as_str(),
            Stage::WAY[f + 1].as_str()
        ))
    }
}

/// A new document.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    /// Its type.
    #[serde(rename = "type")]
    pub doc_type: DocType,
    /// Title.
    pub title: String,
}

/// A document's territory as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TerritoryView {
    /// Area on the LKS-92 TM grid, square metres.
    pub area_m2: f64,
    /// The geometry (GeoJSON, WGS 84).
    #[schema(value_type = Object)]
    pub geometry: serde_json::Value,
}

/// A planning document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Document {
    /// Id.
    pub id: i64,
    /// Its type.
    #[serde(rename = "type")]
    pub doc_type: DocType,
    /// Title.
    pub title: String,
    /// The municipality (organisation) leading it.
    pub organisation: String,
    /// Stage.
    pub stage: Stage,
    /// Territory, once set.
    pub territory: Option<TerritoryView>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// A stage move.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageMove {
    /// The stage to move to.
    pub stage: Stage,
    /// Why (required for a move back and a cancellation).
    #[serde(default)]
    pub reason: Option<String>,
}
