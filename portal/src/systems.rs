//! Systems and their API tokens.
//!
//! - `GET /systems`: the caller's organisation's systems (an admin sees every
//!   organisation's, with a filter), and the form to register one; `POST /systems`
//!   registers it ([`Governance::create_system`]).
//! - `GET /systems/{id}`: a system's facts and its tokens (metadata only: the recognisable
//!   prefix, never the secret), with a form to issue a token and one to revoke each live
//!   token.
//! - `POST /systems/{id}/tokens`: issues a token ([`Governance::create_system_token`]) and
//!   answers with a page (not a redirect, so the secret never travels in a URL) that shows
//!   the secret this once. The secret is not stored; the page, like every portal page, is
//!   sent with `Cache-Control: no-store`.
//! - `POST /tokens/{id}/revoke`: revokes a token ([`Governance::revoke_token`]) and goes
//!   back to its system.
//! - The system page also shows the system's quotas (per token: requests per second,
//!   result streams, SQL queries), each marked when it is the server default, to the
//!   system's organisation and admins ([`system_quotas`]).
//! - `POST /systems/{id}/quotas`: an admin sets the system's own quotas from the form on
//!   that page (an empty field: the server default); a field that is not a whole positive
//!   number, or out of its bounds, is refused by name with the typed values kept
//!   ([`set_system_quotas`]).
//!
//! Who may do what is the service's decision; the pages only hide forms the signed-in
//! role cannot use and say who can.
//!
//! [`Governance::create_system`]: dagr_admin_api::Governance::create_system
//! [`Governance::create_system_token`]: dagr_admin_api::Governance::create_system_token
//! [`Governance::revoke_token`]: dagr_admin_api::Governance::revoke_token
//! [`system_quotas`]: dagr_admin_api::quotas::system_quotas
//! [`set_system_quotas`]: dagr_admin_api::quotas::set_system_quotas

use askama::Template;
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::{Organisation, System, SystemKind, Time, Token};
use dagr_engine::Role;
use serde::Deserialize;

use crate::Portal;
use crate::i18n::{Common, texts};
use crate::session::{Posted, SignedIn};
use crate::web::{
    PortalError, Shell, fmt_time, invalid, message, next_href, organisations, page_after, render,
    render_status, see_other, split_next,
};

texts! {
    /// Texts of the systems and tokens pages.
    pub(crate) struct SystemsText {
        title: "Sistēmas un atslēgas", "Systems and tokens";
        intro: "Informācijas sistēmas, kas saņem datus no DAGR vai piegādā tos, un to API atslēgas. Katra sistēma piekļūst ar savu atslēgu.", "The information systems that read data from DAGR or feed it, and their API tokens. Each system connects with a token of its own.";
        list_heading: "Sistēmas", "Systems";
        list_caption: "Reģistrētās sistēmas", "Registered systems";
        col_id: "Nr.", "Id";
        col_name: "Nosaukums", "Name";
        col_organisation: "Organizācija", "Organisation";
        col_kind: "Veids", "Kind";
        col_description: "Apraksts", "Description";
        col_created: "Reģistrēta", "Registered";
        kind_consumer: "saņēmēja", "consumer";
        kind_provider: "piegādātāja", "provider";
        kind_consumer_long: "Datu saņēmēja sistēma (lasa datus saskaņā ar līgumiem)", "Consumer system (reads data under agreements)";
        kind_provider_long: "Datu piegādātāja sistēma (ielādē organizācijas datu kopas)", "Provider system (feeds the organisation's datasets)";
        no_systems: "Sistēmu vēl nav.", "There are no systems yet.";
        filter_organisation: "Organizācija", "Organisation";
        add_heading: "Reģistrēt sistēmu", "Register a system";
        add_not_allowed: "Sistēmas reģistrē organizācijas datu turētājs vai DAGR administrators.", "Systems are registered by an owner of the organisation or a DAGR administrator.";
        organisation_label: "Organizācija", "Organisation";
        organisation_choose: "Izvēlieties organizāciju", "Choose an organisation";
        name_label: "Nosaukums", "Name";
        name_hint: "Organizācijas ietvaros unikāls, piemēram, „Līgumu uzraudzības sistēma”.", "Unique within the organisation, for example “Contract monitoring system”.";
        kind_label: "Veids", "Kind";
        description_label: "Apraksts (nav obligāts)", "Description (optional)";
        description_hint: "Kam sistēma paredzēta un kas par to atbild.", "What the system is for and who runs it.";
        create_system: "Reģistrēt sistēmu", "Register the system";
        done_created: "Sistēma ir reģistrēta. Tagad varat izveidot tās API atslēgu.", "The system is registered. You can now create its API token.";
        done_revoked: "Atslēga ir atsaukta: ar to vairs nevar piekļūt.", "The token is revoked: it no longer gives access.";
        back_to_list: "Atpakaļ uz visām sistēmām", "Back to all systems";
        facts_id: "Sistēmas Nr.", "System id";
        tokens_heading: "API atslēgas", "API tokens";
        tokens_caption: "Sistēmas API atslēgas (parādīts tikai atslēgas sākums)", "The system's API tokens (only the start of each token is shown)";
        no_tokens: "Šai sistēmai vēl nav atslēgu.", "This system has no tokens yet.";
        col_prefix: "Atslēgas sākums", "Starts with";
        col_label: "Apzīmējums", "Label";
        col_token_created: "Izveidota", "Created";
        col_expires: "Derīga līdz", "Expires";
        col_status: "Statuss", "Status";
        col_actions: "Darbības", "Actions";
        by: "izveidoja", "by";
        never: "bez termiņa", "never";
        status_active: "aktīva", "active";
        status_revoked: "atsaukta", "revoked";
        status_expired: "beigusies", "expired";
        reason: "Iemesls", "Reason";
        revoke: "Atsaukt", "Revoke";
        revoke_confirm: "Atsaukt šo atslēgu? Sistēmas, kas to lieto, tūlīt zaudēs piekļuvi.", "Revoke this token? Systems that use it lose access at once.";
        revoke_reason: "Atsaukšanas iemesls (nav obligāts)", "Reason for revoking (optional)";
        revoke_not_allowed: "Atslēgas atsauc organizācijas datu turētājs vai DAGR administrators.", "Tokens are revoked by an owner of the organisation or a DAGR administrator.";
        new_token_heading: "Izveidot atslēgu", "Create a token";
        new_token_intro: "Atslēga tiks parādīta vienu reizi, tūlīt pēc izveides.", "The token is shown once, right after it is created.";
        token_label: "Apzīmējums (nav obligāts)", "Label (optional)";
        token_label_hint: "Piemēram, kur atslēga tiks lietota.", "For example, where the token will be used.";
        expires_days: "Derīguma termiņš dienās", "Valid for (days)";
        expires_days_hint: "No 1 līdz 3650 dienām. Atstājiet tukšu tikai tad, ja atslēgai nevajag termiņu.", "From 1 to 3650 days. Leave it empty only if the token needs no end date.";
        expires_days_invalid: "jābūt veselam skaitlim no 1 līdz 3650", "must be a whole number from 1 to 3650";
        kind_invalid: "izvēlieties saņēmēja vai piegādātāja sistēmu", "choose a consumer or a provider system";
        organisation_missing: "izvēlieties organizāciju", "choose an organisation";
        create_token: "Izveidot atslēgu", "Create the token";
        token_not_by_admin: "Sistēmu atslēgas izsniedz pati organizācija (piegādātāja sistēmām tās datu turētājs, patērētāja sistēmām tās darbinieks), nevis administrators, jo atslēga dod piekļuvi datiem.", "System tokens are issued by the organisation itself (for a provider system an owner of it, for a consumer system a person of it), not by an administrator, since a token reads data.";
        token_not_yours: "Šīs sistēmas atslēgas izsniedz tās organizācija: piegādātāja sistēmas atslēgas — tās datu turētājs, patērētāja sistēmas atslēgas — tās darbinieks.", "Tokens of this system are issued by its organisation: a provider system's by an owner of it, a consumer system's by a person of it.";
        new_title: "Jaunā API atslēga", "Your new API token";
        new_warning: "Nokopējiet atslēgu tagad un glabājiet to drošā vietā. DAGR to neglabā, un tā vairs netiks parādīta. Ja atslēga pazūd vai nonāk svešās rokās, atsauciet to un izveidojiet jaunu.", "Copy the token now and keep it somewhere safe. DAGR does not store it and cannot show it again. If the token is lost or leaks, revoke it and create a new one.";
        new_secret_label: "Atslēga sistēmai", "Token for the system";
        copy: "Kopēt atslēgu", "Copy the token";
        copied: "Nokopēts", "Copied";
        new_facts_id: "Atslēgas Nr.", "Token id";
        usage_heading: "Kā atslēgu lietot", "How to use the token";
        usage_api: "REST API pieprasījumos sūtiet to galvenē Authorization:", "In REST API requests, send it in the Authorization header:";
        usage_cli: "Ar komandrindas rīku dagr nododiet to mainīgajā DAGR_TOKEN:", "With the dagr command-line tool, pass it in the DAGR_TOKEN variable:";
        usage_placeholder: "Vietā … ielieciet atslēgu.", "Put the token where … stands.";
        back_to_system: "Atpakaļ uz sistēmu", "Back to the system";
        quotas_heading: "Kvotas", "Quotas";
        quotas_intro: "Ierobežojumi katrai šīs sistēmas atslēgai. Pieprasījumu virs tiem DAGR atraida (HTTP 429 vai RESOURCE_EXHAUSTED) un norāda, pēc cik sekundēm mēģināt vēlreiz.", "Limits for each token of this system. DAGR refuses a request over them (HTTP 429 or RESOURCE_EXHAUSTED) and says how many seconds to wait before retrying.";
        quotas_caption: "Sistēmas kvotas (katrai atslēgai)", "The system's quotas (per token)";
        col_quota: "Kvota", "Quota";
        col_limit: "Ierobežojums", "Limit";
        quota_rps: "Pieprasījumi sekundē", "Requests per second";
        quota_streams: "Vienlaikus atvērtas datu plūsmas (Flight DoGet)", "Result streams open at once (Flight DoGet)";
        quota_sql: "Vienlaikus izpildāmi SQL vaicājumi", "SQL queries running at once";
        quota_default: "noklusējums", "default";
        quota_own: "noteikta šai sistēmai", "set for this system";
        quota_unlimited: "bez ierobežojuma", "no limit";
        quotas_hint: "Kvotas nosaka DAGR administrators (PUT /api/v1/systems/{id}/quotas).", "Quotas are set by a DAGR administrator (PUT /api/v1/systems/{id}/quotas).";
        quota_form_heading: "Mainīt kvotas", "Change the quotas";
        quota_form_hint: "Tukšs lauks nozīmē servera noklusējumu. Jaunās kvotas ir spēkā uzreiz šajā serverī un pārējos — to politikas atjaunošanas intervālā.", "An empty field means the server default. New quotas are in force at once on this server, and on the others within their policy refresh interval.";
        quota_save: "Saglabāt kvotas", "Save the quotas";
        quota_number_invalid: "jābūt veselam skaitlim no 1 līdz {max} vai tukšam laukam (servera noklusējums)", "must be a whole number from 1 to {max}, or empty (the server default)";
        done_quotas: "Kvotas ir saglabātas un ir spēkā.", "The quotas are saved and in force.";
        quote_open: "„", "“";
        quote_close: "”", "”";
    }
}

/// Default validity of a new token, in days.
const DEFAULT_DAYS: i64 = 365;
/// Longest validity offered, in days.
const MAX_DAYS: i64 = 3650;

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/systems", get(list).post(create))
        .route("/systems/{id}", get(detail))
        .route("/systems/{id}/tokens", get(to_system).post(create_token))
        .route("/systems/{id}/quotas", get(to_system).post(set_quotas))
        .route("/tokens/{id}/revoke", get(to_token_system).post(revoke))
}

// ---- shared pieces -------------------------------------------------------------------

/// A refusal shown on a form: its lead, the service's message, and the field it names.
#[derive(Debug, Clone, Default)]
struct FormError {
    lead: String,
    detail: String,
    field: String,
}

/// The status and error summary of a form the service refused; `default_field` is the
/// field a conflict or not-found is about (e.g. a taken name).
fn refusal(c: &Common, e: &GovError, default_field: &str) -> (StatusCode, FormError) {
    let (status, lead, field) = match e {
        GovError::Forbidden(_) => (StatusCode::FORBIDDEN, c.error_forbidden, ""),
        GovError::Invalid { field, .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            c.error_invalid,
            field.as_str(),
        ),
        GovError::Conflict(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            c.error_conflict,
            default_field,
        ),
        GovError::NotFound(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            c.error_invalid,
            default_field,
        ),
        GovError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, c.error_unavailable, ""),
        GovError::Engine(_) => (StatusCode::UNPROCESSABLE_ENTITY, c.error_invalid, ""),
    };
    (
        status,
        FormError {
            lead: lead.to_owned(),
            detail: message(e),
            field: field.to_owned(),
        },
    )
}

/// A path id, or the service's not-found for `what`.
fn parse_id(s: &SignedIn, raw: &str, what: &str) -> Result<i64, PortalError> {
    raw.parse()
        .map_err(|_| s.fail(GovError::NotFound(format!("{what} {raw}"))))
}

/// The system of path id `raw`, as the service shows it to the caller.
async fn system(portal: &Portal, s: &SignedIn, raw: &str) -> Result<System, PortalError> {
    let id = parse_id(s, raw, "system")?;
    portal
        .app
        .gov
        .system(&s.principal, id)
        .await
        .map_err(|e| s.fail(e))
}

fn kind_label(t: &SystemsText, kind: SystemKind) -> &'static str {
    match kind {
        SystemKind::Consumer => t.kind_consumer,
        SystemKind::Provider => t.kind_provider,
    }
}

fn kind_long(t: &SystemsText, kind: SystemKind) -> &'static str {
    match kind {
        SystemKind::Consumer => t.kind_consumer_long,
        SystemKind::Provider => t.kind_provider_long,
    }
}

/// The confirmations of the `?done=` parameter.
fn done_notices(t: &SystemsText) -> [(&'static str, &'static str); 3] {
    [
        ("created", t.done_created),
        ("revoked", t.done_revoked),
        ("quotas", t.done_quotas),
    ]
}

// ---- the list ------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
struct ListQuery {
    organisation: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// The fields of the form that registers a system.
#[derive(Debug, Deserialize, Default, Clone)]
struct SystemForm {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    description: String,
}

/// A system as the list and its page show it.
struct SystemView {
    id: i64,
    name: String,
    organisation: String,
    /// Its kind, in words.
    kind: &'static str,
    description: String,
    created: String,
}

impl SystemView {
    /// `sys`, its kind in the words `kind` gives.
    fn of(sys: System, kind: impl FnOnce(SystemKind) -> &'static str) -> SystemView {
        SystemView {
            id: sys.id,
            kind: kind(sys.kind),
            created: fmt_time(sys.created_at),
            name: sys.name,
            organisation: sys.organisation,
            description: sys.description,
        }
    }
}

#[derive(Template)]
#[template(path = "systems.html")]
struct ListPage {
    shell: Shell,
    t: &'static SystemsText,
    rows: Vec<SystemView>,
    admin: bool,
    organisations: Vec<Organisation>,
    filter: String,
    next: Option<String>,
    show_form: bool,
    form: SystemForm,
    error: Option<FormError>,
}

/// The list page, with the form as given and its refusal, if any.
async fn list_page(
    portal: &Portal,
    s: &SignedIn,
    q: &ListQuery,
    form: SystemForm,
    error: Option<FormError>,
) -> Result<ListPage, PortalError> {
    let t = SystemsText::get(s.lang());
    let gov = &portal.app.gov;
    let p = &s.principal;
    let admin = s.role() == Role::Admin;
    let filter = q
        .organisation
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned);
    let systems = gov
        .systems(p, filter.as_deref(), &page_after(q.after.as_deref()))
        .await
        .map_err(|e| s.fail(e))?;
    let (systems, after) = split_next(systems, |sys| sys.id);
    let param = ("organisation", filter.as_deref().unwrap_or(""));
    let next = next_href("/systems", Some(param), after);
    let organisations = if admin {
        organisations(portal, s).await?
    } else {
        Vec::new()
    };
    let rows = systems
        .into_iter()
        .map(|sys| SystemView::of(sys, |k| kind_label(t, k)))
        .collect();
    let may_create = admin || s.role() == Role::Owner;
    Ok(ListPage {
        shell: s
            .shell(t.title)
            .with_done(q.done.as_deref(), &done_notices(t)),
        t,
        rows,
        admin,
        organisations,
        filter: filter.unwrap_or_default(),
        next,
        show_form: may_create || error.is_some(),
        form,
        error,
    })
}

async fn list(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<ListQuery>,
) -> Result<Response, PortalError> {
    let form = SystemForm {
        organisation: q.organisation.clone().unwrap_or_default(),
        kind: SystemKind::Consumer.as_str().to_owned(),
        ..SystemForm::default()
    };
    let page = list_page(&portal, &s, &q, form, None).await?;
    Ok(render(&page))
}

async fn create(
    State(portal): State<Portal>,
    Posted { session: s, form }: Posted<SystemForm>,
) -> Result<Response, PortalError> {
    let t = SystemsText::get(s.lang());
    let admin = s.role() == Role::Admin;
    let organisation = if admin {
        form.organisation.trim().to_owned()
    } else {
        s.organisation().unwrap_or_default().to_owned()
    };
    let result = match SystemKind::parse(form.kind.trim()) {
        None => Err(invalid("kind", t.kind_invalid)),
        Some(_) if organisation.is_empty() && admin => {
            Err(invalid("organisation", t.organisation_missing))
        }
        Some(kind) => {
            portal
                .app
                .gov
                .create_system(
                    &s.principal,
                    &organisation,
                    &form.name,
                    kind,
                    &form.description,
                )
                .await
        }
    };
    match result {
        Ok(sys) => Ok(see_other(&format!("/systems/{}?done=created", sys.id))),
        Err(e) => {
            let default_field = if matches!(e, GovError::NotFound(_)) {
                "organisation"
            } else {
                "name"
            };
            let (status, error) = refusal(s.shell("").c, &e, default_field);
            let q = ListQuery::default();
            let page = list_page(&portal, &s, &q, form, Some(error)).await?;
            Ok(render_status(status, &page))
        }
    }
}

// ---- one system ----------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
struct DetailQuery {
    after: Option<String>,
    done: Option<String>,
}

/// The fields of an admin's quota form: each a whole number, or empty for the default.
#[derive(Debug, Deserialize, Default, Clone)]
struct QuotaForm {
    #[serde(default)]
    requests_per_second: String,
    #[serde(default)]
    streams: String,
    #[serde(default)]
    sql_queries: String,
}

impl QuotaForm {
    fn value(&self, k: dagr_engine::QuotaKind) -> &str {
        use dagr_engine::QuotaKind;
        match k {
            QuotaKind::RequestsPerSecond => &self.requests_per_second,
            QuotaKind::Streams => &self.streams,
            QuotaKind::SqlQueries => &self.sql_queries,
        }
    }

    /// The overrides typed (empty: the default); a field that is not a whole positive
    /// number is refused by name. The bounds are the governance's (`QuotaOverrides::validate`).
    fn overrides(&self, t: &SystemsText) -> Result<dagr_engine::QuotaOverrides, GovError> {
        use dagr_engine::QuotaKind;
        let field = |k: QuotaKind| -> Result<Option<u32>, GovError> {
            let v = self.value(k).trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=k.max()).contains(n))
                .map(Some)
                .ok_or_else(|| {
                    let max = k.max().to_string();
                    invalid(k.name(), t.quota_number_invalid.replace("{max}", &max))
                })
        };
        Ok(dagr_engine::QuotaOverrides {
            requests_per_second: field(QuotaKind::RequestsPerSecond)?,
            streams: field(QuotaKind::Streams)?,
            sql_queries: field(QuotaKind::SqlQueries)?,
        })
    }
}

/// The fields of the form that issues a token.
#[derive(Debug, Deserialize, Default, Clone)]
struct TokenForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    expires_days: String,
}

/// The fields of a revoke form.
#[derive(Debug, Deserialize, Default)]
struct RevokeForm {
    #[serde(default)]
    reason: String,
}

struct TokenRow {
    id: i64,
    prefix: String,
    label: String,
    created: String,
    created_by: String,
    expires: String,
    /// The tag's class: `active`, `revoked` or `expired`.
    status: &'static str,
    status_label: &'static str,
    /// Why it was revoked, if a reason was given.
    reason: Option<String>,
    /// Not revoked and not expired: it can be revoked.
    live: bool,
    /// A refusal of this row's revoke form.
    error: Option<FormError>,
    /// The reason typed in this row's revoke form.
    reason_value: String,
}

/// One quota of the system as its page shows it.
struct QuotaRow {
    /// `requests_per_second`, `streams` or `sql_queries` (the row's id).
    name: &'static str,
    label: &'static str,
    /// The limit in force, in words.
    limit: String,
    /// Whether it is the server default.
    default: bool,
    /// What the admin's form shows for it: the system's own value, or what was typed.
    value: String,
}

/// The system's quotas in rows, in the words of `t`.
fn quota_rows(
    t: &SystemsText,
    q: &dagr_admin_api::quotas::SystemQuotas,
    typed: Option<&QuotaForm>,
) -> Vec<QuotaRow> {
    use dagr_engine::QuotaKind;
    QuotaKind::ALL
        .into_iter()
        .map(|k| {
            let v = q.get(k);
            QuotaRow {
                name: k.name(),
                label: match k {
                    QuotaKind::RequestsPerSecond => t.quota_rps,
                    QuotaKind::Streams => t.quota_streams,
                    QuotaKind::SqlQueries => t.quota_sql,
                },
                limit: v
                    .limit
                    .map_or_else(|| t.quota_unlimited.to_owned(), |n| n.to_string()),
                default: v.default,
                value: match typed {
                    Some(f) => f.value(k).to_owned(),
                    None if v.default => String::new(),
                    None => v.limit.map(|n| n.to_string()).unwrap_or_default(),
                },
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "system.html")]
struct DetailPage {
    shell: Shell,
    t: &'static SystemsText,
    system: SystemView,
    /// Its quotas, for its organisation and admins.
    quotas: Option<Vec<QuotaRow>>,
    /// A refusal of the admin's quota form.
    quota_error: Option<FormError>,
    tokens: Vec<TokenRow>,
    next: Option<String>,
    may_issue: bool,
    may_revoke: bool,
    admin: bool,
    form: TokenForm,
    error: Option<FormError>,
}

/// A revoke form refused: which token, what was typed, and why.
struct RevokeRefusal {
    token: i64,
    reason: String,
    error: FormError,
}

/// The status of a token now: (class, whether it still works).
fn token_status(t: &Token, now: Time) -> (&'static str, bool) {
    if t.revoked_at.is_some() {
        ("revoked", false)
    } else if t.expires_at.is_some_and(|e| e <= now) {
        ("expired", false)
    } else {
        ("active", true)
    }
}

/// Why a revoked token was revoked, from its history (the reason given, if any).
async fn revoke_reason(portal: &Portal, s: &SignedIn, id: i64) -> Option<String> {
    let history = portal
        .app
        .gov
        .history(&s.principal, "token", id)
        .await
        .ok()?;
    history
        .into_iter()
        .rev()
        .find(|h| h.action == "revoked")
        .and_then(|h| h.reason)
        .filter(|r| !r.trim().is_empty())
}

/// What the system page shows besides the system: the token form as typed, and the refusal
/// of a form, if any.
struct Forms {
    token: TokenForm,
    /// The token form's refusal.
    error: Option<FormError>,
    revoke: Option<RevokeRefusal>,
    /// The quota form as typed, and its refusal.
    quota: Option<(QuotaForm, FormError)>,
}

impl Forms {
    /// Blank forms, nothing refused.
    fn blank() -> Self {
        Forms {
            token: default_token_form(),
            error: None,
            revoke: None,
            quota: None,
        }
    }
}

/// The system page, with its forms as given and a refusal, if any.
async fn detail_page(
    portal: &Portal,
    s: &SignedIn,
    sys: System,
    q: &DetailQuery,
    forms: Forms,
) -> Result<DetailPage, PortalError> {
    let Forms {
        token: form,
        error,
        revoke,
        quota,
    } = forms;
    let t = SystemsText::get(s.lang());
    let gov = &portal.app.gov;
    let tokens = gov
        .system_tokens(&s.principal, sys.id, &page_after(q.after.as_deref()))
        .await
        .map_err(|e| s.fail(e))?;
    let (tokens, after) = split_next(tokens, |tok| tok.id);
    let next = next_href(&format!("/systems/{}", sys.id), None, after);
    let now = Time::now();
    let mut rows = Vec::with_capacity(tokens.len());
    for tok in tokens {
        let (status, live) = token_status(&tok, now);
        let reason = if status == "revoked" {
            revoke_reason(portal, s, tok.id).await
        } else {
            None
        };
        let (error, reason_value) = match &revoke {
            Some(r) if r.token == tok.id => (Some(r.error.clone()), r.reason.clone()),
            _ => (None, String::new()),
        };
        rows.push(TokenRow {
            id: tok.id,
            status,
            status_label: match status {
                "revoked" => t.status_revoked,
                "expired" => t.status_expired,
                _ => t.status_active,
            },
            reason,
            live,
            error,
            reason_value,
            created: fmt_time(tok.created_at),
            expires: tok
                .expires_at
                .map(fmt_time)
                .unwrap_or_else(|| t.never.to_owned()),
            prefix: tok.prefix,
            label: tok.label,
            created_by: tok.created_by,
        });
    }
    let admin = s.role() == Role::Admin;
    let own = s.organisation() == Some(sys.organisation.as_str());
    let may_issue = dagr_admin_api::Governance::may_issue_system_token(&s.principal, &sys).is_ok();
    let quotas = if admin || own {
        let q = dagr_admin_api::quotas::system_quotas(gov, &s.principal, sys.id)
            .await
            .map_err(|e| s.fail(e))?;
        Some(quota_rows(t, &q, quota.as_ref().map(|(f, _)| f)))
    } else {
        None
    };
    // Every portal session is a person: people of the organisation revoke its tokens.
    let may_revoke = admin || own;
    Ok(DetailPage {
        shell: s
            .shell(sys.name.clone())
            .with_done(q.done.as_deref(), &done_notices(t)),
        t,
        system: SystemView::of(sys, |k| kind_long(t, k)),
        quotas,
        quota_error: quota.map(|(_, e)| e),
        tokens: rows,
        next,
        may_issue,
        may_revoke,
        admin,
        form,
        error,
    })
}

fn default_token_form() -> TokenForm {
    TokenForm {
        label: String::new(),
        expires_days: DEFAULT_DAYS.to_string(),
    }
}

async fn detail(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, PortalError> {
    let sys = system(&portal, &s, &raw).await?;
    let page = detail_page(&portal, &s, sys, &q, Forms::blank()).await?;
    Ok(render(&page))
}

/// `POST /systems/{id}/quotas`: an admin sets the system's own quotas (empty fields: the
/// server defaults); back to the system page, or the page again with the refusal.
async fn set_quotas(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<QuotaForm>,
) -> Result<Response, PortalError> {
    let gov = &portal.app.gov;
    if let Err(e) = dagr_admin_api::Governance::require_admin(&s.principal) {
        return Err(s.fail(e));
    }
    let t = SystemsText::get(s.lang());
    let sys = system(&portal, &s, &raw).await?;
    let set = match form.overrides(t) {
        Ok(own) => dagr_admin_api::quotas::set_system_quotas(gov, &s.principal, sys.id, own)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match set {
        Ok(()) => Ok(see_other(&format!("/systems/{}?done=quotas", sys.id))),
        Err(e @ (GovError::NotFound(_) | GovError::Forbidden(_))) => Err(s.fail(e)),
        Err(e) => {
            let (status, error) = refusal(s.shell("").c, &e, "");
            let q = DetailQuery::default();
            let forms = Forms {
                quota: Some((form, error)),
                ..Forms::blank()
            };
            let page = detail_page(&portal, &s, sys, &q, forms).await?;
            Ok(render_status(status, &page))
        }
    }
}

/// `GET /systems/{id}/tokens` (e.g. the language switch on the new token's page): the
/// system page; the secret is not shown again.
async fn to_system(s: SignedIn, Path(raw): Path<String>) -> Result<Response, PortalError> {
    let id = parse_id(&s, &raw, "system")?;
    Ok(see_other(&format!("/systems/{id}")))
}

/// `GET /tokens/{id}/revoke`: the token's system page.
async fn to_token_system(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
) -> Result<Response, PortalError> {
    let id = parse_id(&s, &raw, "token")?;
    let tok = portal
        .app
        .gov
        .token(&s.principal, id)
        .await
        .map_err(|e| s.fail(e))?;
    Ok(match tok.system {
        Some(sys) => see_other(&format!("/systems/{sys}")),
        None => see_other("/systems"),
    })
}

/// The validity in days typed in the form, as an end time (`None`: no end).
fn expiry(t: &SystemsText, days: &str) -> Result<Option<Time>, GovError> {
    let days = days.trim();
    if days.is_empty() {
        return Ok(None);
    }
    match days.parse::<i64>() {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => Ok(Some(Time::now().plus_days(d))),
        _ => Err(invalid("expires_days", t.expires_days_invalid)),
    }
}

#[derive(Template)]
#[template(path = "token_new.html")]
struct NewTokenPage {
    shell: Shell,
    t: &'static SystemsText,
    secret: String,
    token_id: i64,
    prefix: String,
    label: String,
    expires: String,
    system_id: i64,
    system_name: String,
    provider: bool,
}

async fn create_token(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<TokenForm>,
) -> Result<Response, PortalError> {
    let t = SystemsText::get(s.lang());
    let sys = system(&portal, &s, &raw).await?;
    let issued = match expiry(t, &form.expires_days) {
        Ok(expires) => {
            portal
                .app
                .gov
                .create_system_token(Some(&s.principal), sys.id, &form.label, expires)
                .await
        }
        Err(e) => Err(e),
    };
    match issued {
        Ok(issued) => {
            let page = NewTokenPage {
                shell: s.shell(t.new_title),
                t,
                secret: issued.secret,
                token_id: issued.token.id,
                prefix: issued.token.prefix,
                label: issued.token.label,
                expires: issued
                    .token
                    .expires_at
                    .map(fmt_time)
                    .unwrap_or_else(|| t.never.to_owned()),
                system_id: sys.id,
                system_name: sys.name,
                provider: sys.kind == SystemKind::Provider,
            };
            Ok(render(&page))
        }
        Err(e @ GovError::NotFound(_)) => Err(s.fail(e)),
        Err(e) => {
            let (status, error) = refusal(s.shell("").c, &e, "");
            let q = DetailQuery::default();
            let forms = Forms {
                token: form,
                error: Some(error),
                ..Forms::blank()
            };
            let page = detail_page(&portal, &s, sys, &q, forms).await?;
            Ok(render_status(status, &page))
        }
    }
}

async fn revoke(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<RevokeForm>,
) -> Result<Response, PortalError> {
    let gov = &portal.app.gov;
    let id = parse_id(&s, &raw, "token")?;
    match gov.revoke_token(&s.principal, id, &form.reason).await {
        Ok(tok) => Ok(see_other(&match tok.system {
            Some(sys) => format!("/systems/{sys}?done=revoked"),
            None => "/systems?done=revoked".to_owned(),
        })),
        Err(e @ GovError::NotFound(_)) => Err(s.fail(e)),
        Err(e) => {
            // Shown on the token's system page when the caller can see it.
            let sys = match gov.token(&s.principal, id).await {
                Ok(Token {
                    system: Some(sys), ..
                }) => gov.system(&s.principal, sys).await.ok(),
                _ => None,
            };
            let Some(sys) = sys else {
                return Err(s.fail(e));
            };
            let (status, error) = refusal(s.shell("").c, &e, "reason");
            let refusal = RevokeRefusal {
                token: id,
                reason: form.reason,
                error,
            };
            let q = DetailQuery::default();
            let forms = Forms {
                revoke: Some(refusal),
                ..Forms::blank()
            };
            let page = detail_page(&portal, &s, sys, &q, forms).await?;
            Ok(render_status(status, &page))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn expiry_days_are_bounded() {
        let t = SystemsText::get(Lang::En);
        assert_eq!(expiry(t, " ").unwrap(), None);
        let in_30 = expiry(t, "30").unwrap().unwrap();
        assert!(in_30 > Time::now().plus_days(29));
        for bad in ["0", "-1", "3651", "1.5", "abc"] {
            assert!(
                matches!(expiry(t, bad), Err(GovError::Invalid { ref field, .. }) if field == "expires_days"),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_known_confirmations_are_shown() {
        let t = SystemsText::get(Lang::Lv);
        let shell = |done| Shell::anonymous(Lang::Lv, "/systems").with_done(done, &done_notices(t));
        assert_eq!(
            shell(Some("revoked")).notice.as_deref(),
            Some(t.done_revoked)
        );
        assert_eq!(shell(Some("<script>")).notice, None);
        assert_eq!(shell(None).notice, None);
    }
}
