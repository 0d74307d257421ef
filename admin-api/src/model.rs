//! The governance model: organisations, users, systems, tokens, datasets' metadata, access
//! requests, agreements, schema change requests and the history of every state change.
//! These types are what the store returns and what the API serialises.

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A point in time, stored as Unix milliseconds and written as RFC 3339 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

impl Time {
    /// Now.
    pub fn now() -> Self {
        Time(Utc::now().timestamp_millis())
    }

    /// `days` days later.
    pub fn plus_days(self, days: i64) -> Self {
        Time(self.0.saturating_add(days.saturating_mul(86_400_000)))
    }

    /// As a chrono UTC time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// RFC 3339 text, e.g. `2026-11-27T08:35:48.123Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Parse RFC 3339, or a plain date `YYYY-MM-DD` meaning its first instant (UTC).
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Some(Time(t.timestamp_millis()));
        }
        let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        Some(Time(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis()))
    }

    /// Parse an end of validity: RFC 3339, or a plain date meaning the end of that day, so
    /// that "valid to 2027-12-31" includes the 31st.
    pub fn parse_end(text: &str) -> Option<Self> {
        if DateTime::parse_from_rfc3339(text).is_ok() {
            return Self::parse(text);
        }
        Self::parse(text).map(|t| t.plus_days(1))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Time::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{s}` is not an RFC 3339 time or a YYYY-MM-DD date"
            ))
        })
    }
}

impl utoipa::PartialSchema for Time {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 time in UTC"))
            .into()
    }
}

impl ToSchema for Time {}

/// Declares a string enum with `as_str`/`parse`, serde in lower case, and an OpenAPI schema.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// The name used in the API and the store.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parse the name used in the API and the store.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What a system does with DAGR.
    SystemKind {
        /// Reads data under agreements.
        Consumer => "consumer",
        /// Feeds its organisation's datasets.
        Provider => "provider",
    }
}

string_enum! {
    /// Whom a token authenticates.
    TokenKind {
        /// An operator of DAGR.
        Admin => "admin",
        /// A system of an organisation (consumer or provider).
        System => "system",
        /// A citizen (demo subject login; a national eID provider later).
        Subject => "subject",
        /// A person (portal user) of an organisation, acting as themselves: their role and
        /// organisation, read from the user whenever the access policy is built.
        User => "user",
    }
}

string_enum! {
    /// The role of a person at an organisation.
    UserRole {
        /// Operates DAGR.
        Admin => "admin",
        /// Data steward of the organisation's datasets.
        Owner => "owner",
        /// Requests and uses data for the organisation.
        Consumer => "consumer",
    }
}

string_enum! {
    /// State of an access request.
    RequestStatus {
        /// Waiting for the owner's decision.
        Pending => "pending",
        /// Approved; an agreement was made.
        Approved => "approved",
        /// Refused by the owner, with a reason.
        Refused => "refused",
        /// Withdrawn by the consumer.
        Withdrawn => "withdrawn",
    }
}

string_enum! {
    /// State of an agreement. `expired` is never stored: an active agreement past its end
    /// is reported as expired.
    AgreementStatus {
        /// In force between `valid_from` and `valid_to`.
        Active => "active",
        /// Revoked by the owner (or an admin), with a reason.
        Revoked => "revoked",
        /// Past its end date.
        Expired => "expired",
    }
}

string_enum! {
    /// State of a schema change request.
    ChangeStatus {
        /// Breaks active agreements; waits for an admin.
        Pending => "pending",
        /// Broke no agreement and was applied when filed.
        Applied => "applied",
        /// Accepted by an admin and applied.
        Accepted => "accepted",
        /// Rejected by an admin, with a reason.
        Rejected => "rejected",
    }
}

string_enum! {
    /// State of a load: `receiving` → `validating` → `committed` | `refused`.
    LoadStatus {
        /// The data is arriving (an HTTP body is being received).
        Receiving => "receiving",
        /// All data arrived; it is being read, validated and committed.
        Validating => "validating",
        /// The load is the dataset's current snapshot (`version`, `rows`).
        Committed => "committed",
        /// Nothing was loaded; `reasons` say why.
        Refused => "refused",
    }
}

impl LoadStatus {
    /// Whether the load has ended (committed or refused).
    pub fn is_final(self) -> bool {
        matches!(self, LoadStatus::Committed | LoadStatus::Refused)
    }
}

string_enum! {
    /// How the data of a load reached DAGR.
    LoadChannel {
        /// An HTTP upload (`POST /api/v1/datasets/{name}/loads`).
        Http => "http",
        /// An Arrow Flight `DoPut`.
        Flight => "flight",
        /// Loaded by the server itself from its data directory (the demo's registers).
        Local => "local",
    }
}

string_enum! {
    /// What a load does to its dataset.
    LoadMode {
        /// A whole new snapshot replaces the current one.
        Snapshot => "snapshot",
        /// A change set (upserts and deletes by key) makes the next version.
        Changes => "changes",
    }
}

/// One attempt to load a dataset, and what became of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Load {
    /// Id.
    pub id: i64,
    /// Dataset name.
    pub dataset: String,
    /// How the data arrived.
    pub channel: LoadChannel,
    /// What the load does.
    pub mode: LoadMode,
    /// State.
    pub status: LoadStatus,
    /// The snapshot version it made current (`committed` only).
    pub version: Option<i64>,
    /// Rows in that version (`committed` only).
    pub rows: Option<i64>,
    /// Bytes received.
    pub bytes: i64,
    /// Why nothing was loaded (`refused` only; e.g. the column at fault).
    pub reasons: Vec<String>,
    /// Who loaded: the caller's role, organisation, system or user, and token.
    pub created_by: String,
    /// When it started.
    pub created_at: Time,
    /// When it was committed or refused.
    pub finished_at: Option<Time>,
}

/// How a load ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// The data is the dataset's current snapshot.
    Committed {
        /// The version made current.
        version: i64,
        /// Its rows.
        rows: i64,
    },
    /// Nothing was loaded.
    Refused {
        /// Why (at least one reason).
        reasons: Vec<String>,
    },
}

impl LoadOutcome {
    /// A refusal for one reason.
    pub fn refused(reason: impl Into<String>) -> Self {
        LoadOutcome::Refused {
            reasons: vec![reason.into()],
        }
    }
}

/// An organisation: a data owner, a consumer, or both.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organisation {
    /// Short code, e.g. `PMLP`; the key.
    pub code: String,
    /// Full name.
    pub name: String,
    /// When it was registered.
    pub created_at: Time,
}

/// A person who signs in to the portal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Login name (unique).
    pub login: String,
    /// Display name.
    pub name: String,
    /// Organisation code (`None` for DAGR operators).
    pub organisation: Option<String>,
    /// Role at the organisation.
    pub role: UserRole,
    /// When the account was made.
    pub created_at: Time,
}

/// An information system of an organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct System {
    /// Id.
    pub id: i64,
    /// Owning organisation's code.
    pub organisation: String,
    /// Name, unique within the organisation.
    pub name: String,
    /// Consumer or provider.
    pub kind: SystemKind,
    /// What it is.
    pub description: String,
    /// When it was registered.
    pub created_at: Time,
}

/// An API token's metadata; the secret is shown once at creation and stored only hashed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Token {
    /// Id.
    pub id: i64,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// Whom it authenticates.
    pub kind: TokenKind,
    /// The system, for system tokens.
    pub system: Option<i64>,
    /// The subject's personal code, for subject tokens.
    pub subject: Option<String>,
    /// The person's user id, for user tokens.
    pub user: Option<i64>,
    /// The person's login, for user tokens (for display; `None` if the user is gone).
    pub user_login: Option<String>,
    /// Free label.
    pub label: String,
    /// When it was made.
    pub created_at: Time,
    /// Who made it.
    pub created_by: String,
    /// When it stops working, if ever.
    pub expires_at: Option<Time>,
    /// When it was revoked.
    pub revoked_at: Option<Time>,
}

/// A token as the authenticator needs it.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// The token.
    pub token: Token,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    /// The system's organisation and kind, for system tokens.
    pub system: Option<System>,
    /// The person, for user tokens: their role and organisation as stored now.
    pub user: Option<User>,
}

/// Governance metadata of a dataset (its schema lives in the engine).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatasetMeta {
    /// Dataset name.
    pub name: String,
    /// Owner organisation's code.
    pub owner: String,
    /// Days the owner has to decide an access request.
    pub sla_days: i64,
    /// Provider systems that feed the dataset.
    pub provider_systems: Vec<i64>,
    /// When it was registered.
    pub created_at: Time,
}

/// A consumer organisation's request for access to a dataset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessRequest {
    /// Id.
    pub id: i64,
    /// Dataset name.
    pub dataset: String,
    /// The dataset's owner organisation.
    pub owner_organisation: String,
    /// The requesting organisation.
    pub consumer_organisation: String,
    /// Requested attributes.
    pub attributes: Vec<String>,
    /// Requested row scope (SQL predicate), if any.
    pub row_scope: Option<String>,
    /// Purpose of use.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: String,
    /// Systems of the consumer that will use the data.
    pub systems: Vec<i64>,
    /// Start of the requested validity.
    pub valid_from: Time,
    /// End of the requested validity.
    pub valid_to: Time,
    /// State.
    pub status: RequestStatus,
    /// When it was filed.
    pub created_at: Time,
    /// Who filed it.
    pub created_by: String,
    /// SLA deadline for the owner's decision.
    pub due_at: Time,
    /// Pending past its deadline.
    pub overdue: bool,
    /// When it was decided, withdrawn or refused.
    pub decided_at: Option<Time>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The reason of a refusal (or a note on approval or withdrawal).
    pub reason: Option<String>,
    /// The agreement made by approval.
    pub agreement_id: Option<i64>,
}

/// An agreement: what a consumer organisation's systems may read of a dataset, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Agreement {
    /// Id.
    pub id: i64,
    /// The request it came from.
    pub request_id: i64,
    /// Dataset name.
    pub dataset: String,
    /// The dataset's owner organisation.
    pub owner_organisation: String,
    /// The consumer organisation.
    pub consumer_organisation: String,
    /// Granted attributes.
    pub attributes: Vec<String>,
    /// Granted row scope (SQL predicate), `null` for every row.
    pub row_scope: Option<String>,
    /// Purpose of use.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: String,
    /// Systems that may read under it.
    pub systems: Vec<i64>,
    /// Start of validity.
    pub valid_from: Time,
    /// End of validity (exclusive).
    pub valid_to: Time,
    /// State now.
    pub status: AgreementStatus,
    /// When it was made.
    pub created_at: Time,
    /// Who approved it.
    pub approved_by: String,
    /// When it was revoked.
    pub revoked_at: Option<Time>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
}

impl Agreement {
    /// Whether it grants anything at `now`.
    pub fn in_force(&self, now: Time) -> bool {
        self.status == AgreementStatus::Active && self.valid_from <= now && now < self.valid_to
    }

    /// The status as seen at `now` (`active` past its end reads `expired`).
    pub fn status_at(&self, now: Time) -> AgreementStatus {
        if self.status == AgreementStatus::Active && now >= self.valid_to {
            AgreementStatus::Expired
        } else {
            self.status
        }
    }
}

/// One state change of a governed entity.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Id.
    pub id: i64,
    /// Kind of entity: `request`, `agreement`, `change_request`, `token`, `system`, ...
    pub entity: String,
    /// The entity's id.
    pub entity_id: String,
    /// What happened, e.g. `approved`.
    pub action: String,
    /// Status before, if it changed.
    pub from_status: Option<String>,
    /// Status after, if it changed.
    pub to_status: Option<String>,
    /// Who did it.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: Time,
    /// Further details.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// An attribute whose type a schema change alters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Retyped {
    /// Attribute name.
    pub name: String,
    /// Type before.
    pub from: String,
    /// Type after.
    pub to: String,
}

/// What a schema change does to a dataset's attributes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SchemaDiff {
    /// New attributes (visible to no one until granted).
    pub added: Vec<String>,
    /// Removed attributes.
    pub removed: Vec<String>,
    /// Attributes whose type changes.
    pub retyped: Vec<Retyped>,
    /// Personal attributes that stop being personal, or whose data subject is read from
    /// another column: their reads would no longer be audited as before, so such a change
    /// waits for an admin's review even when it affects no agreement.
    #[serde(default)]
    pub unmarked_personal: Vec<String>,
}

/// An active agreement that a schema change breaks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AffectedAgreement {
    /// Agreement id.
    pub agreement: i64,
    /// Its consumer organisation.
    pub consumer_organisation: String,
    /// The removed or retyped attributes it grants or its row scope reads.
    pub attributes: Vec<String>,
}

/// A request to change a dataset's schema.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeRequest {
    /// Id.
    pub id: i64,
    /// Dataset name.
    pub dataset: String,
    /// The proposed definition.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// What changes.
    pub changes: SchemaDiff,
    /// Active agreements it breaks, with their consumers.
    pub affected: Vec<AffectedAgreement>,
    /// State.
    pub status: ChangeStatus,
    /// Who filed it.
    pub filed_by: String,
    /// When.
    pub filed_at: Time,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Time>,
    /// Why (rejections).
    pub reason: Option<String>,
    /// The definition it was filed against; acceptance requires it to be still current.
    #[serde(skip)]
    pub base: Option<serde_json::Value>,
}
