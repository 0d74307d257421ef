//! The usage audit as people read it.
//!
//! - `GET /me/usage`: the citizen's "who used my data" page: every access record and usage
//!   event about the signed-in citizen, newest first, a page at a time, by period (Latvian
//!   local days) and organisation — the same read as `GET /api/v1/me/usage`
//!   ([`subject_usage_page`]), for the subject the identity provider named at sign-in.
//! - `GET /usage`: owners' and admins' usage summary of a period (by default the last 30
//!   days) and dataset, with two charts (reads per day, committed and refused loads per
//!   day) and tables by dataset, consumer organisation and attribute — the summary of
//!   `GET /api/v1/usage/summary` ([`usage_summary_for`]): owners see their organisation's
//!   datasets, admins all, anyone else is refused by the same rule.
//! - `GET /usage/records.csv`: the records of that period as CSV, streamed: the very
//!   export of `GET /api/v1/usage/records?format=csv` ([`usage_records_for`]).
//!
//! [`subject_usage_page`]: dagr_admin_api::audit::subject_usage_page
//! [`usage_summary_for`]: dagr_admin_api::audit::usage_summary_for
//! [`usage_records_for`]: dagr_admin_api::audit::usage_records_for

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use chrono::NaiveDate;
use dagr_admin_api::Governance;
use dagr_admin_api::audit::store::{
    AuditStoreError, EntryKind, SummaryRow, UsageEntry, UsageFilter,
};
use dagr_admin_api::audit::{
    subject_usage_page, usage_records_for, usage_scope, usage_summary_for,
};
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::error::ApiError;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::{Load, LoadStatus, Time};
use dagr_admin_api::store::Page;
use dagr_engine::{Principal, Role};
use serde::Deserialize;

use crate::Portal;
use crate::chart::{self, Chart, Series};
use crate::i18n::texts;
use crate::session::SignedIn;
use crate::web::{
    PortalError, Shell, encode_component, fmt_time, message, organisations, render, render_status,
    riga_day_start,
};

texts! {
    /// Texts of the usage pages (the citizen's and the owners' and admins').
    pub(crate) struct UsageText {
        me_title: "Kas izmantoja manus datus", "Who used my data";
        me_lead: "Šeit redzams katrs gadījums, kad DAGR nodeva jūsu personas datus kādai organizācijai, un katrs gadījums, kad organizācija pati ziņoja, ka tos izmantojusi. Jaunākie ieraksti ir augšā.", "Here is every time DAGR handed your personal data to an organisation, and every time an organisation reported that it used them. The newest are at the top.";
        kinds_title: "Ko nozīmē ieraksti", "What the records mean";
        kind_access: "DAGR piekļuves ieraksts", "DAGR access record";
        kind_access_explain: "DAGR pats pierakstīja, ka nodeva šos jūsu datus organizācijas sistēmai saskaņā ar norādīto līgumu un nolūku, ko organizācija deklarēja.", "DAGR itself recorded that it handed these data of yours to the organisation's system, under the agreement shown and for the purpose the organisation declared.";
        kind_usage: "Organizācijas lietošanas notikums", "Organisation's usage event";
        kind_usage_explain: "Organizācija pati ziņoja, ka savā sistēmā izmantoja jūsu datus, piemēram, izskatot jūsu pieteikumu.", "The organisation itself reported that it used your data in its own system, for example while handling your application.";
        kinds_more: "Ja uzskatāt, ka jūsu dati izmantoti bez pamata, vērsieties pie attiecīgās organizācijas vai Datu valsts inspekcijā.", "If you believe your data were used without grounds, contact the organisation or the Data State Inspectorate.";
        filter_title: "Atlasīt ierakstus", "Filter the records";
        from: "No (datums)", "From (date)";
        to: "Līdz (datums, ieskaitot)", "To (date, inclusive)";
        local_days: "Dienas pēc Latvijas laika; datums formā GGGG-MM-DD.", "Days in Latvian time; dates as YYYY-MM-DD.";
        organisation: "Organizācija", "Organisation";
        all_organisations: "Visas organizācijas", "All organisations";
        records_caption: "Jūsu datu izmantošana", "Use of your data";
        col_time: "Laiks", "Time";
        col_organisation: "Organizācija", "Organisation";
        col_system: "Sistēma", "System";
        col_dataset: "Datu kopa", "Dataset";
        col_attributes: "Nolasītie dati", "Data read";
        col_purpose: "Nolūks", "Purpose";
        col_kind: "Veids", "Kind";
        col_agreement: "Līgums", "Agreement";
        record_no: "ieraksts Nr. ", "record no. ";
        via: "caur", "through";
        transaction: "darījums", "transaction";
        agreement_no: "Nr. ", "no. ";
        not_given: "nav norādīts", "not given";
        no_usage_me: "Šajā periodā neviens nav izmantojis jūsu datus.", "No one has used your data in this period.";
        no_usage_me_hint: "Ja atlasījāt periodu vai organizāciju, mēģiniet to paplašināt.", "If you chose a period or an organisation, try a wider one.";
        more_follow: "Ir vēl vecāki ieraksti.", "There are older records.";
        citizens_only: "Šī lapa ir iedzīvotājiem: tā rāda, kas izmantoja pieslēgušās personas datus. Datu turētāji un administratori datu izmantošanu redz lapā „Datu izmantošana”.", "This page is for citizens: it shows who used the signed-in person's own data. Data owners and administrators see data usage on the “Data usage” page.";
        bad_date: "Datums jāraksta formā GGGG-MM-DD.", "Write the date as YYYY-MM-DD.";
        from_after_to: "Sākuma datums nevar būt vēlāks par beigu datumu.", "The start date cannot be after the end date.";
        title: "Datu izmantošana", "Data usage";
        lead_owner: "Kā datu saņēmēji izmantoja jūsu organizācijas datu kopas, un kā tās tika ielādētas.", "How data consumers used your organisation's datasets, and how they were loaded.";
        lead_admin: "Visu datu kopu izmantošana un ielādes.", "Usage and loads of every dataset.";
        period_hint: "Dienas skaita pēc UTC laika, kā tās apkopo audita žurnāls. Bez datumiem — pēdējās 30 dienas.", "Days are counted in UTC, as the audit log sums them up. Without dates: the last 30 days.";
        dataset: "Datu kopa", "Dataset";
        all_datasets: "Visas datu kopas", "All datasets";
        period: "Periods", "Period";
        count_hint: "Katrs nodotais atribūts skaitās atsevišķi: ieraksts ar trim atribūtiem skaitās trīs reizes.", "Each attribute handed out counts once: a record of three attributes counts three times.";
        download_csv: "Lejupielādēt šī perioda ierakstus (CSV)", "Download the records of this period (CSV)";
        chart_usage_title: "Izmantošana laikā", "Usage over time";
        chart_usage_desc: "Personas datu atribūtu nolasījumi un ziņotie lietojumi dienā, no", "Reads and reported uses of personal attributes per day, from";
        series_reads: "nolasījumi un lietojumi", "reads and uses";
        chart_loads_title: "Ielādes laikā", "Loads over time";
        chart_loads_desc: "Pieņemtās un noraidītās datu ielādes dienā, no", "Committed and refused loads per day, from";
        until: "līdz", "to";
        series_committed: "pieņemtas", "committed";
        series_refused: "noraidītas", "refused";
        day: "Diena", "Day";
        show_numbers: "Rādīt skaitļus tabulā", "Show the numbers as a table";
        by_dataset: "Pa datu kopām", "By dataset";
        by_consumer: "Pa datu saņēmējiem", "By consumer organisation";
        by_attribute: "Pa atribūtiem", "By attribute";
        col_reads: "Nolasījumi caur DAGR", "Reads through DAGR";
        col_reported: "Ziņotie lietojumi", "Reported uses";
        col_rows: "Nolasītās rindas", "Rows read";
        col_attribute: "Atribūts", "Attribute";
        no_usage: "Šajā periodā datu izmantošanas nav.", "No usage in this period.";
    }
}

/// Entries per page of the citizen view.
const PAGE_SIZE: usize = 50;
/// Loads read per page when collecting a period's loads.
const LOADS_PAGE: i64 = 100;
/// Most loads read per dataset for a chart.
const MAX_LOADS: usize = 5000;
/// A day in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/me/usage", get(my_usage))
        .route("/usage", get(usage_page))
        .route("/usage/records.csv", get(records_csv))
}

/// A failure of the usage views as a readable page.
pub(crate) fn api_fail(s: &SignedIn, e: ApiError) -> PortalError {
    let shell = s.shell("");
    let c = shell.c;
    match e {
        ApiError::Gov(g) => shell.fail(g),
        ApiError::Engine(e) => shell.fail(GovError::Engine(e)),
        ApiError::Audit(AuditStoreError::Invalid { field, reason }) => {
            shell.fail(GovError::Invalid { field, reason })
        }
        ApiError::Audit(AuditStoreError::Forbidden(m)) => shell.fail(GovError::Forbidden(m)),
        ApiError::BadRequest(m) | ApiError::Unprocessable(m) => {
            shell.error(StatusCode::BAD_REQUEST, c.error_invalid, &m)
        }
        ApiError::NotFound(m) => shell.error(StatusCode::NOT_FOUND, c.error_not_found, &m),
        other => {
            tracing::error!(error = %other, "portal: the usage audit failed");
            shell.unavailable()
        }
    }
}

/// `None` for an empty or blank value.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A `<select>` option.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

// ---- the citizen's page ------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
struct MyUsageQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    organisation: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

/// One entry as the citizen's table shows it.
struct EntryRow {
    id: String,
    time: String,
    organisation: String,
    organisation_name: Option<String>,
    system: String,
    dataset: String,
    attributes: String,
    purpose: String,
    access: bool,
    channel: Option<String>,
    transaction: Option<String>,
    agreements: Vec<String>,
}

fn channel_name(channel: &str) -> String {
    match channel {
        "rest" => "REST API".into(),
        "flight-get" => "Arrow Flight".into(),
        "flight-sql" => "Flight SQL".into(),
        other => other.to_owned(),
    }
}

fn entry_row(t: &UsageText, e: UsageEntry) -> EntryRow {
    EntryRow {
        id: e.id,
        time: fmt_time(e.time),
        organisation: e.organisation.unwrap_or_else(|| t.not_given.to_owned()),
        organisation_name: e.organisation_name,
        system: match (e.system_name, e.system) {
            (Some(name), _) => name,
            (None, Some(id)) => id,
            (None, None) => t.not_given.to_owned(),
        },
        dataset: e.dataset.unwrap_or_else(|| t.not_given.to_owned()),
        attributes: if e.attributes.is_empty() {
            t.not_given.to_owned()
        } else {
            e.attributes.join(", ")
        },
        purpose: e.purpose.unwrap_or_else(|| t.not_given.to_owned()),
        access: e.kind == EntryKind::Access,
        channel: e.channel.as_deref().map(channel_name),
        transaction: e.transaction_id,
        agreements: e.agreements,
    }
}

#[derive(Template)]
#[template(path = "me_usage.html")]
struct MyUsagePage {
    shell: Shell,
    t: &'static UsageText,
    from: String,
    to: String,
    organisations: Vec<Choice>,
    error: Option<String>,
    bad_field: &'static str,
    rows: Vec<EntryRow>,
    next: Option<String>,
}

/// A date field of the citizen's filter: `Ok(None)` when empty.
fn date_field(v: Option<&str>) -> Result<Option<NaiveDate>, ()> {
    v.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| ()))
        .transpose()
}

async fn my_usage(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<MyUsageQuery>,
) -> Result<Response, PortalError> {
    let t = UsageText::get(s.lang());
    let Some(subject) = s.subject().map(str::to_owned) else {
        let shell = s.shell(t.me_title);
        let c = shell.c;
        return Err(shell.error(StatusCode::FORBIDDEN, c.error_forbidden, t.citizens_only));
    };
    let shell = s.shell(t.me_title);
    let organisation = given(&q.organisation).map(str::to_owned);
    let organisations = organisations(&portal, &s)
        .await?
        .into_iter()
        .map(|o| Choice {
            selected: organisation.as_deref() == Some(o.code.as_str()),
            label: format!("{} — {}", o.code, o.name),
            value: o.code,
        })
        .collect();
    let mut page = MyUsagePage {
        shell,
        t,
        from: given(&q.from).unwrap_or("").to_owned(),
        to: given(&q.to).unwrap_or("").to_owned(),
        organisations,
        error: None,
        bad_field: "",
        rows: Vec::new(),
        next: None,
    };
    let from = date_field(given(&q.from));
    let to = date_field(given(&q.to));
    let refused = |mut page: MyUsagePage, field: &'static str, text: &str| {
        page.error = Some(format!("{} {text}", page.shell.c.error_invalid));
        page.bad_field = field;
        Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    let (from, to) = match (from, to) {
        (Err(()), _) => return refused(page, "from", t.bad_date),
        (_, Err(())) => return refused(page, "to", t.bad_date),
        (Ok(f), Ok(t)) => (f, t),
    };
    if let (Some(f), Some(to)) = (from, to)
        && f > to
    {
        return refused(page, "from", t.from_after_to);
    }
    let before = match given(&q.before) {
        None => None,
        Some(b) => match b.parse::<i64>() {
            Ok(v) if v > 0 => Some(v),
            _ => {
                let c = page.shell.c;
                return Err(page
                    .shell
                    .error(StatusCode::BAD_REQUEST, c.error_invalid, ""));
            }
        },
    };
    let filter = UsageFilter {
        from: from.map(|d| riga_day_start(d).0),
        to: to.and_then(|d| d.succ_opt()).map(|d| riga_day_start(d).0),
        organisation: organisation.clone(),
    };
    let result = subject_usage_page(&portal.app, &subject, &filter, before, PAGE_SIZE)
        .await
        .map_err(|e| api_fail(&s, e))?;
    page.rows = result
        .entries
        .into_iter()
        .map(|e| entry_row(t, e))
        .collect();
    page.next = result.next.map(|cursor| {
        let mut href = String::from("/me/usage?");
        for (k, v) in [
            ("from", page.from.as_str()),
            ("to", page.to.as_str()),
            ("organisation", organisation.as_deref().unwrap_or("")),
        ] {
            if !v.is_empty() {
                href.push_str(&format!("{k}={}&", encode_component(v)));
            }
        }
        href.push_str(&format!("before={cursor}"));
        href
    });
    Ok(render(&page))
}

// ---- owners' and admins' summary -----------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
struct SummaryQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    dataset: Option<String>,
}

/// A line of a table by dataset or by consumer.
struct CountRow {
    key: String,
    name: Option<String>,
    reads: u64,
    reported: u64,
}

/// A line of the table by attribute.
struct AttributeRow {
    dataset: String,
    attribute: String,
    reads: u64,
    reported: u64,
    rows: u64,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    shell: Shell,
    t: &'static UsageText,
    lead: &'static str,
    from: String,
    to: String,
    datasets: Vec<Choice>,
    error: Option<String>,
    bad_field: String,
    csv_href: String,
    usage_chart: String,
    loads_chart: String,
    by_dataset: Vec<CountRow>,
    by_consumer: Vec<CountRow>,
    by_attribute: Vec<AttributeRow>,
}

/// The UTC days `[from, to)` touches, as `YYYY-MM-DD`, and the first one's number.
pub(crate) fn days(from_ms: i64, to_ms: i64) -> (i64, Vec<String>) {
    let first = from_ms.div_euclid(DAY_MS);
    let last = (to_ms - 1).max(from_ms).div_euclid(DAY_MS);
    let labels = (first..=last)
        .map(|d| {
            Time(d * DAY_MS)
                .to_datetime()
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    (first, labels)
}

/// Every load of `datasets` from `since` on, newest first per dataset — and at least the
/// newest page of each, older or not — read a page at a time through the governance service
/// (which checks that `p` sees them).
pub(crate) async fn loads_since(
    gov: &Governance,
    p: &Principal,
    datasets: &[String],
    since: Time,
) -> Result<Vec<Load>, GovError> {
    let mut all = Vec::new();
    for name in datasets {
        let mut after: Option<String> = None;
        let mut taken = 0usize;
        loop {
            let page = gov
                .loads(
                    p,
                    name,
                    &Page {
                        limit: LOADS_PAGE,
                        after: after.clone(),
                    },
                )
                .await?;
            let full = page.len() as i64 == LOADS_PAGE;
            let older = page.last().is_some_and(|l| l.created_at < since);
            after = page.last().map(|l| l.id.to_string());
            taken += page.len();
            all.extend(page);
            if !full || older || taken >= MAX_LOADS {
                break;
            }
        }
    }
    Ok(all)
}

/// A chart's description: `lead`, then the first and the last of the days `labels`.
fn period_desc(t: &UsageText, lead: &str, labels: &[String]) -> String {
    format!(
        "{lead} {} {} {}",
        labels.first().map_or("", String::as_str),
        t.until,
        labels.last().map_or("", String::as_str)
    )
}

/// A chart per day of the days `labels`.
fn day_chart<'a>(
    t: &'a UsageText,
    id: &'a str,
    title: &'a str,
    desc: &'a str,
    labels: &'a [String],
) -> Chart<'a> {
    Chart {
        id,
        title,
        desc,
        x_name: t.day,
        table_label: t.show_numbers,
        labels,
    }
}

/// The chart of committed and refused loads per UTC day of `[from, to)`.
pub(crate) fn loads_chart(
    t: &UsageText,
    id: &str,
    loads: &[Load],
    from_ms: i64,
    to_ms: i64,
) -> String {
    let (first, labels) = days(from_ms, to_ms);
    let mut committed = vec![0u64; labels.len()];
    let mut refused = vec![0u64; labels.len()];
    for l in loads {
        if l.created_at.0 < from_ms || l.created_at.0 >= to_ms {
            continue;
        }
        let i = (l.created_at.0.div_euclid(DAY_MS) - first) as usize;
        match l.status {
            LoadStatus::Committed => committed[i] += 1,
            LoadStatus::Refused => refused[i] += 1,
            _ => {}
        }
    }
    let desc = period_desc(t, t.chart_loads_desc, &labels);
    chart::stacked_bars(
        &day_chart(t, id, t.chart_loads_title, &desc, &labels),
        &[
            Series {
                name: t.series_committed,
                class: "bar alt",
                values: &committed,
            },
            Series {
                name: t.series_refused,
                class: "bar bad",
                values: &refused,
            },
        ],
    )
}

/// The chart of reads per UTC day of `[from, to)`.
fn usage_chart(t: &UsageText, rows: &[SummaryRow], from_ms: i64, to_ms: i64) -> String {
    let (_, labels) = days(from_ms, to_ms);
    let mut per_day: HashMap<&str, u64> = HashMap::new();
    for r in rows {
        *per_day.entry(r.day.as_str()).or_default() += r.records.max(0) as u64;
    }
    let values: Vec<u64> = labels
        .iter()
        .map(|d| per_day.get(d.as_str()).copied().unwrap_or(0))
        .collect();
    let desc = period_desc(t, t.chart_usage_desc, &labels);
    chart::daily_bars(
        &day_chart(t, "chart-usage-svg", t.chart_usage_title, &desc, &labels),
        &Series {
            name: t.series_reads,
            class: "bar",
            values: &values,
        },
    )
}

/// Add a summary row's count to a table line.
fn count(map: &mut BTreeMap<String, (u64, u64)>, key: String, r: &SummaryRow) {
    let e = map.entry(key).or_default();
    match r.kind {
        EntryKind::Access => e.0 += r.records.max(0) as u64,
        EntryKind::Usage => e.1 += r.records.max(0) as u64,
    }
}

async fn usage_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<SummaryQuery>,
) -> Result<Response, PortalError> {
    let t = UsageText::get(s.lang());
    let app = &portal.app;
    // Who may see what is the audit's rule: a consumer or a citizen is refused here.
    let visible = usage_scope(app, &s.principal, None).map_err(|e| api_fail(&s, e))?;
    let dataset = given(&q.dataset).map(str::to_owned);
    let names = visible
        .clone()
        .unwrap_or_else(|| app.engine.dataset_names());
    let mut page = UsagePage {
        shell: s.shell(t.title),
        t,
        lead: if s.role() == Role::Admin {
            t.lead_admin
        } else {
            t.lead_owner
        },
        from: given(&q.from).unwrap_or("").to_owned(),
        to: given(&q.to).unwrap_or("").to_owned(),
        datasets: names
            .iter()
            .map(|n| Choice {
                value: n.clone(),
                label: n.clone(),
                selected: dataset.as_deref() == Some(n.as_str()),
            })
            .collect(),
        error: None,
        bad_field: String::new(),
        csv_href: String::new(),
        usage_chart: String::new(),
        loads_chart: String::new(),
        by_dataset: Vec::new(),
        by_consumer: Vec::new(),
        by_attribute: Vec::new(),
    };
    let (from, to, rows) = match usage_summary_for(
        app,
        &s.principal,
        given(&q.from),
        given(&q.to),
        dataset.as_deref(),
    )
    .await
    {
        Ok(v) => v,
        Err(ApiError::Gov(e @ GovError::Invalid { .. })) => {
            let c = page.shell.c;
            if let GovError::Invalid { field, .. } = &e {
                page.bad_field = field.clone();
            }
            page.error = Some(format!("{} {}", c.error_invalid, message(&e)));
            return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
        Err(e) => return Err(api_fail(&s, e)),
    };
    if page.from.is_empty() {
        page.from = Time(from).to_datetime().format("%Y-%m-%d").to_string();
    }
    if page.to.is_empty() {
        page.to = Time(to - 1).to_datetime().format("%Y-%m-%d").to_string();
    }
    let mut csv = String::from("/usage/records.csv?");
    csv.push_str(&format!(
        "from={}&to={}",
        encode_component(&page.from),
        encode_component(&page.to)
    ));
    if let Some(d) = &dataset {
        csv.push_str(&format!("&dataset={}", encode_component(d)));
    }
    page.csv_href = csv;
    page.usage_chart = usage_chart(t, &rows, from, to);
    let load_datasets: Vec<String> = match &dataset {
        Some(d) => vec![d.clone()],
        None => names.clone(),
    };
    let loads = loads_since(&app.gov, &s.principal, &load_datasets, Time(from))
        .await
        .map_err(|e| s.fail(e))?;
    page.loads_chart = loads_chart(t, "chart-loads-svg", &loads, from, to);

    let names_of: HashMap<String, String> = organisations(&portal, &s)
        .await?
        .into_iter()
        .map(|o| (o.code, o.name))
        .collect();
    let mut by_dataset = BTreeMap::new();
    let mut by_consumer = BTreeMap::new();
    let mut by_attribute: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for r in &rows {
        let d = r.dataset.clone().unwrap_or_else(|| t.not_given.to_owned());
        count(&mut by_dataset, d.clone(), r);
        count(
            &mut by_consumer,
            r.organisation
                .clone()
                .unwrap_or_else(|| t.not_given.to_owned()),
            r,
        );
        let a = by_attribute
            .entry((
                d,
                r.attribute
                    .clone()
                    .unwrap_or_else(|| t.not_given.to_owned()),
            ))
            .or_default();
        match r.kind {
            EntryKind::Access => {
                a.0 += r.records.max(0) as u64;
                a.2 += r.rows.max(0) as u64;
            }
            EntryKind::Usage => a.1 += r.records.max(0) as u64,
        }
    }
    page.by_dataset = by_dataset
        .into_iter()
        .map(|(key, (reads, reported))| CountRow {
            key,
            name: None,
            reads,
            reported,
        })
        .collect();
    page.by_consumer = by_consumer
        .into_iter()
        .map(|(key, (reads, reported))| CountRow {
            name: names_of.get(&key).cloned(),
            key,
            reads,
            reported,
        })
        .collect();
    page.by_attribute = by_attribute
        .into_iter()
        .map(
            |((dataset, attribute), (reads, reported, rows))| AttributeRow {
                dataset,
                attribute,
                reads,
                reported,
                rows,
            },
        )
        .collect();
    Ok(render(&page))
}

/// `GET /usage/records.csv`: the export of `GET /api/v1/usage/records?format=csv`, for
/// this principal, streamed as it is read.
async fn records_csv(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<SummaryQuery>,
) -> Result<Response, PortalError> {
    usage_records_for(
        &portal.app,
        &s.principal,
        given(&q.from),
        given(&q.to),
        given(&q.dataset),
        Some("csv"),
    )
    .await
    .map_err(|e| api_fail(&s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_covers_the_days_it_touches() {
        let d = |s: &str| Time::parse(s).unwrap().0;
        let (first, labels) = days(d("2026-03-01"), d("2026-03-04"));
        assert_eq!(labels, ["2026-03-01", "2026-03-02", "2026-03-03"]);
        assert_eq!(first * DAY_MS, d("2026-03-01"));
        let (_, labels) = days(d("2026-03-01T12:00:00Z"), d("2026-03-02T00:00:01Z"));
        assert_eq!(labels, ["2026-03-01", "2026-03-02"]);
    }
}
