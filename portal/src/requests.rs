//! Access requests, the owner's inbox and agreements.
//!
//! - `GET /requests`: the requests the caller may see (a consumer its organisation's, an
//!   owner those for its datasets, an admin all), newest first, by status, a page at a time.
//! - `GET /requests/{id}`: one request with its deadline, decision and history; the
//!   consumer's withdraw form and the owner's approve (possibly narrowing) and refuse forms.
//! - `POST /requests/{id}/withdraw`, `/approve`, `/refuse`: the decisions, through
//!   [`Governance::withdraw`], [`Governance::approve`] and [`Governance::refuse`].
//! - `GET /inbox`: an owner's pending requests, soonest deadline first, with the time left,
//!   and the recent decisions.
//! - `GET /agreements`, `GET /agreements/{id}`, `POST /agreements/{id}/revoke`: the
//!   agreements the caller may see, one with its history, and revocation.
//!
//! Who may see and decide what is the service's rule: a page hides a form its visitor
//! cannot use, and shows the service's refusal when one is posted anyway.
//!
//! [`Governance::withdraw`]: dagr_admin_api::Governance::withdraw
//! [`Governance::approve`]: dagr_admin_api::Governance::approve
//! [`Governance::refuse`]: dagr_admin_api::Governance::refuse

use askama::Template;
use dagr_admin_api::Governance;
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::{get, post};
use dagr_admin_api::governance::{ApprovalInput, GovError};
use dagr_admin_api::model::{
    AccessRequest, Agreement, AgreementStatus, HistoryEntry, RequestStatus, Time,
};
use dagr_admin_api::store::{ListFilter, Page};
use dagr_engine::Role;
use serde::Deserialize;

use crate::Portal;
use crate::i18n::{Lang, texts};
use crate::session::{Posted, SignedIn};
use crate::web::{
    PortalError, Shell, encode_component, fmt_end, fmt_time, invalid, message, next_href,
    page_after, read_all, render, render_status, riga, riga_day_start, see_other, split_next,
};

texts! {
    /// Texts of the request, inbox and agreement pages.
    pub(crate) struct RequestsText {
        requests_title: "Piekļuves pieprasījumi", "Access requests";
        requests_intro_consumer: "Jūsu organizācijas piekļuves pieprasījumi, jaunākie vispirms. Jaunu pieprasījumu iesniedz datu kopas lapā katalogā.", "Your organisation's access requests, newest first. File a new request from a dataset's page in the catalog.";
        requests_intro_owner: "Piekļuves pieprasījumi jūsu organizācijas datu kopām, jaunākie vispirms. Tie, kas gaida jūsu lēmumu, ir sadaļā „Pieprasījumi man”.", "Access requests for your organisation's datasets, newest first. Those waiting for your decision are in the inbox.";
        requests_intro_admin: "Visi piekļuves pieprasījumi, jaunākie vispirms.", "All access requests, newest first.";
        requests_caption: "Pieprasījumi", "Requests";
        no_requests: "Nav neviena pieprasījuma.", "There are no requests.";
        request_title: "Piekļuves pieprasījums Nr. ", "Access request no. ";
        request_no: "Pieprasījums Nr. ", "Request no. ";
        col_request: "Pieprasījums", "Request";
        status: "Statuss", "Status";
        dataset: "Datu kopa", "Dataset";
        owner: "Datu turētājs", "Data owner";
        requester: "Pieprasītājs", "Requester";
        consumer: "Datu saņēmējs", "Consumer";
        attributes: "Atribūti", "Attributes";
        requested_attributes: "Pieprasītie atribūti", "Requested attributes";
        row_scope: "Rindu tvērums", "Row scope";
        all_rows: "visas rindas", "all rows";
        purpose: "Nolūks", "Purpose";
        legal_basis: "Tiesiskais pamats", "Legal basis";
        systems: "Sistēmas", "Systems";
        system_no: "sistēma Nr. ", "system no. ";
        validity: "Derīgums", "Validity";
        from: "no", "from";
        until: "līdz", "to";
        valid_to: "Derīgs līdz", "Valid to";
        created: "Iesniegts", "Filed";
        created_by: "Iesniedza", "Filed by";
        deadline: "Lēmuma termiņš", "Decision deadline";
        time_left: "Atlikušais laiks", "Time left";
        status_pending: "gaida lēmumu", "pending";
        status_approved: "apstiprināts", "approved";
        status_refused: "atteikts", "refused";
        status_withdrawn: "atsaukts", "withdrawn";
        status_active: "spēkā", "active";
        status_revoked: "atcelts", "revoked";
        status_expired: "beidzies", "expired";
        left_prefix: "vēl ", "";
        left_suffix: "", " left";
        overdue_prefix: "nokavēts par ", "overdue by ";
        overdue_suffix: "", "";
        day_one: "diena", "day";
        day_many: "dienas", "days";
        day_one_by: "dienu", "day";
        day_many_by: "dienām", "days";
        hours: "h", "h";
        minutes: "min", "min";
        decision: "Lēmums", "Decision";
        decided_by: "Izlēma", "Decided by";
        withdrawn_by: "Atsauca", "Withdrawn by";
        decided_at: "Kad", "When";
        decided_col: "Lēmuma laiks", "Decided at";
        reason_refused: "Atteikuma iemesls", "Reason for refusal";
        reason_note: "Piezīme", "Note";
        reason_withdrawn: "Atsaukšanas iemesls", "Reason for withdrawal";
        agreement_no: "Līgums Nr. ", "Agreement no. ";
        resulting_agreement: "Noslēgtais līgums", "Resulting agreement";
        granted_attributes: "Piešķirtie atribūti", "Granted attributes";
        granted_row_scope: "Piešķirtais rindu tvērums", "Granted row scope";
        narrowed: "Datu turētājs apstiprināja mazāk, nekā pieprasīts.", "The owner approved less than was requested.";
        history: "Vēsture", "History";
        no_history: "Vēstures ierakstu nav.", "No history yet.";
        reason: "Iemesls", "Reason";
        act_filed: "Pieprasījums iesniegts", "Request filed";
        act_approved: "Pieprasījums apstiprināts", "Request approved";
        act_refused: "Pieprasījums atteikts", "Request refused";
        act_withdrawn: "Pieprasījums atsaukts", "Request withdrawn";
        act_made: "Līgums noslēgts", "Agreement made";
        act_revoked: "Līgums atcelts", "Agreement revoked";
        act_narrowed: "Līgums sašaurināts shēmas izmaiņu dēļ", "Agreement narrowed by a schema change";
        withdraw_title: "Atsaukt pieprasījumu", "Withdraw the request";
        withdraw_intro: "Ja piekļuve vairs nav vajadzīga, atsauciet pieprasījumu; datu turētājs to vairs neizskatīs.", "If you no longer need access, withdraw the request; the owner will not decide it.";
        withdraw_reason: "Iemesls (nav obligāts)", "Reason (optional)";
        withdraw: "Atsaukt pieprasījumu", "Withdraw request";
        withdraw_confirm: "Vai tiešām atsaukt šo pieprasījumu?", "Withdraw this request?";
        decide_title: "Jūsu lēmums", "Your decision";
        approve_title: "Apstiprināt", "Approve";
        approve_attributes: "Piešķiramie atribūti", "Attributes to grant";
        approve_attributes_hint: "Noņemiet atzīmi atribūtiem, kas norādītajam nolūkam nav vajadzīgi.", "Untick the attributes the stated purpose does not need.";
        approve_row_scope: "Papildu rindu nosacījums (nav obligāts)", "Extra row condition (optional)";
        approve_row_scope_hint: "SQL nosacījums pār datu kopas kolonnām, piemēram, municipality = 'Rīga'. To apvieno ar pieprasīto tvērumu ar AND.", "A SQL condition over the dataset's columns, e.g. municipality = 'Rīga'. It is combined with the requested scope by AND.";
        approve_valid_to: "Agrāks beigu datums (nav obligāts)", "Earlier end date (optional)";
        approve_valid_to_hint: "Līgums būs spēkā līdz norādītās dienas beigām (ieskaitot šo dienu) pēc Latvijas laika. Ja lauku atstāj tukšu, paliek pieprasītais: līdz", "The agreement stays in force to the end of the day you give (that day included), Latvian time. Left empty, it keeps the requested end: to";
        approve_note: "Piezīme pieprasītājam (nav obligāta)", "Note for the requester (optional)";
        approve: "Apstiprināt pieprasījumu", "Approve request";
        refuse_title: "Atteikt", "Refuse";
        refuse_reason: "Atteikuma iemesls", "Reason for refusal";
        refuse_reason_hint: "Iemeslu redzēs pieprasītājs, un tas tiks saglabāts vēsturē.", "The requester sees the reason, and it is kept in the history.";
        refuse: "Atteikt pieprasījumu", "Refuse request";
        refuse_confirm: "Vai tiešām atteikt šo pieprasījumu?", "Refuse this request?";
        bad_date: "jābūt datumam formā GGGG-MM-DD", "must be a date YYYY-MM-DD";
        done_created: "Pieprasījums iesniegts. Datu turētājs to izskatīs līdz lēmuma termiņam.", "The request was filed. The owner decides it by the deadline shown.";
        done_withdrawn: "Pieprasījums atsaukts.", "The request was withdrawn.";
        done_approved: "Pieprasījums apstiprināts, un līgums noslēgts.", "The request was approved and the agreement made.";
        done_refused: "Pieprasījums atteikts.", "The request was refused.";
        done_revoked: "Līgums atcelts; piekļuve ir pārtraukta.", "The agreement was revoked; access has stopped.";
        inbox_title: "Pieprasījumi, kas gaida jūsu lēmumu", "Requests waiting for your decision";
        inbox_intro: "Piekļuves pieprasījumi jūsu organizācijas datu kopām, kas gaida lēmumu; tuvākais termiņš vispirms.", "Access requests for your organisation's datasets waiting for a decision, soonest deadline first.";
        inbox_caption: "Gaida lēmumu", "Waiting for a decision";
        inbox_empty: "Neviens pieprasījums negaida lēmumu.", "No request is waiting for a decision.";
        inbox_waiting: "gaida lēmumu", "waiting for a decision";
        inbox_overdue: "nokavēti", "overdue";
        inbox_more: "Parādīta tikai daļa pieprasījumu; visus skatiet pieprasījumu sarakstā.", "Only some of the requests are shown; see the list of requests for all of them.";
        recent_title: "Nesen pieņemtie lēmumi", "Recent decisions";
        recent_empty: "Lēmumu vēl nav.", "No decisions yet.";
        all_requests: "Visi pieprasījumi", "All requests";
        agreements_title: "Līgumi", "Agreements";
        agreements_intro_consumer: "Jūsu organizācijas līgumi: ko un kādam nolūkam jūsu sistēmas drīkst saņemt.", "Your organisation's agreements: what your systems may receive, and why.";
        agreements_intro_owner: "Līgumi par jūsu organizācijas datu kopām.", "Agreements on your organisation's datasets.";
        agreements_intro_admin: "Visi līgumi.", "All agreements.";
        no_agreements: "Līgumu nav.", "There are no agreements.";
        agreement_title: "Līgums Nr. ", "Agreement no. ";
        col_agreement: "Līgums", "Agreement";
        from_request: "Noslēgts pēc pieprasījuma", "Made on request";
        made: "Noslēgts", "Made";
        approved_by: "Apstiprināja", "Approved by";
        revoked_at: "Atcelts", "Revoked";
        revoked_by: "Atcēla", "Revoked by";
        revoke_title: "Atcelt līgumu", "Revoke the agreement";
        revoke_intro: "Pēc atcelšanas datu saņēmēja sistēmas šos datus vairs nesaņems.", "Once revoked, the consumer's systems receive no more of this data.";
        revoke_reason: "Atcelšanas iemesls", "Reason for revocation";
        revoke: "Atcelt līgumu", "Revoke agreement";
        revoke_confirm: "Vai tiešām atcelt šo līgumu? Piekļuve tiks pārtraukta nekavējoties.", "Revoke this agreement? Access stops at once.";
    }
}

/// Pending requests the inbox reads at most (it sorts them by deadline itself).
const INBOX_MAX: usize = 500;
/// Decisions the inbox shows below the pending requests.
const RECENT: usize = 10;

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/requests", get(requests_page))
        .route("/requests/{id}", get(request_page))
        .route("/requests/{id}/withdraw", post(withdraw))
        .route("/requests/{id}/approve", post(approve))
        .route("/requests/{id}/refuse", post(refuse))
        .route("/inbox", get(inbox_page))
        .route("/agreements", get(agreements_page))
        .route("/agreements/{id}", get(agreement_page))
        .route("/agreements/{id}/revoke", post(revoke))
}

// ---- time left ------------------------------------------------------------------------

/// The time left to a deadline, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Left {
    /// The deadline has passed.
    pub(crate) overdue: bool,
    /// "3 days 4 h left", "overdue by 2 days", "vēl 3 dienas 4 h", "nokavēts par 2 dienām".
    pub(crate) text: String,
}

/// Whether `n` takes the singular in `lang` (Latvian: numbers ending in 1, but not 11).
fn singular(lang: Lang, n: u64) -> bool {
    match lang {
        Lang::Lv => n % 10 == 1 && n % 100 != 11,
        Lang::En => n == 1,
    }
}

/// The time from `now` to `due` in days and hours (hours and minutes under a day, minutes
/// under an hour), counted down whole units; past `due`, how long it is overdue.
pub(crate) fn time_left(lang: Lang, now: Time, due: Time) -> Left {
    let t = RequestsText::get(lang);
    let overdue = now > due;
    let total_min = due.0.abs_diff(now.0) / 60_000;
    let (days, hours, minutes) = (total_min / 1440, total_min % 1440 / 60, total_min % 60);
    let body = if days > 0 {
        let unit = match (overdue, singular(lang, days)) {
            (false, true) => t.day_one,
            (false, false) => t.day_many,
            (true, true) => t.day_one_by,
            (true, false) => t.day_many_by,
        };
        if hours > 0 {
            format!("{days} {unit} {hours} {}", t.hours)
        } else {
            format!("{days} {unit}")
        }
    } else if hours > 0 {
        if minutes > 0 {
            format!("{hours} {} {minutes} {}", t.hours, t.minutes)
        } else {
            format!("{hours} {}", t.hours)
        }
    } else {
        format!("{minutes} {}", t.minutes)
    };
    let text = if overdue {
        format!("{}{body}{}", t.overdue_prefix, t.overdue_suffix)
    } else {
        format!("{}{body}{}", t.left_prefix, t.left_suffix)
    };
    Left { overdue, text }
}

/// The end of a day (`YYYY-MM-DD`) in Latvian local time: the first instant of the next
/// day there.
fn riga_end_of_day(date: &str) -> Option<Time> {
    let day = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    Some(riga_day_start(day.succ_opt()?))
}

/// The last Latvian day whose end (see [`riga_end_of_day`]) is not after `end`: the day
/// before `end`'s local date (so for an end at local midnight, the day [`fmt_end`] shows).
fn last_day(end: Time) -> String {
    riga(end)
        .date()
        .pred_opt()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

// ---- shared pieces --------------------------------------------------------------------

fn request_status(t: &RequestsText, s: RequestStatus) -> &'static str {
    match s {
        RequestStatus::Pending => t.status_pending,
        RequestStatus::Approved => t.status_approved,
        RequestStatus::Refused => t.status_refused,
        RequestStatus::Withdrawn => t.status_withdrawn,
    }
}

fn agreement_status(t: &RequestsText, s: AgreementStatus) -> &'static str {
    match s {
        AgreementStatus::Active => t.status_active,
        AgreementStatus::Revoked => t.status_revoked,
        AgreementStatus::Expired => t.status_expired,
    }
}

/// A status for a `<select>`.
struct StatusOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The choices of a status filter: `all`, with `current` selected.
fn status_options<S: Copy + PartialEq>(
    all: &[S],
    current: Option<S>,
    value: fn(S) -> &'static str,
    label: impl Fn(S) -> &'static str,
) -> Vec<StatusOption> {
    all.iter()
        .map(|&st| StatusOption {
            value: value(st),
            label: label(st),
            selected: current == Some(st),
        })
        .collect()
}

/// One entry of an entity's history.
struct HistoryView {
    at: String,
    action: String,
    actor: String,
    reason: Option<String>,
}

fn history_view(t: &RequestsText, entries: Vec<HistoryEntry>) -> Vec<HistoryView> {
    entries
        .into_iter()
        .map(|h| {
            let action = match (h.entity.as_str(), h.action.as_str()) {
                ("request", "filed") => t.act_filed.to_owned(),
                ("request", "approved") => t.act_approved.to_owned(),
                ("request", "refused") => t.act_refused.to_owned(),
                ("request", "withdrawn") => t.act_withdrawn.to_owned(),
                ("agreement", "made") => t.act_made.to_owned(),
                ("agreement", "revoked") => t.act_revoked.to_owned(),
                ("agreement", "narrowed") => t.act_narrowed.to_owned(),
                (_, other) => other.to_owned(),
            };
            HistoryView {
                at: fmt_time(h.at),
                action,
                actor: h.actor,
                reason: h.reason.filter(|r| !r.is_empty()),
            }
        })
        .collect()
}

/// The refusal of a form, shown above it, with the field it names.
struct FormError {
    /// Which form: `approve`, `refuse`, `withdraw`, `revoke`.
    form: &'static str,
    lead: &'static str,
    message: String,
    field: String,
}

impl FormError {
    fn of(shell: &Shell, form: &'static str, e: &GovError) -> FormError {
        FormError {
            form,
            lead: shell.c.error_invalid,
            message: message(e),
            field: match e {
                GovError::Invalid { field, .. } => field.clone(),
                _ => String::new(),
            },
        }
    }
}

/// Whether `e` is a refusal of the form's input (shown with the form), not of the action.
fn refuses_input(e: &GovError) -> bool {
    matches!(e, GovError::Invalid { .. } | GovError::Engine(_))
}

/// An id from the path, or the service's "not found" for anything else.
fn parse_id(s: &SignedIn, what: &str, raw: &str) -> Result<i64, PortalError> {
    raw.parse()
        .map_err(|_| s.fail(GovError::NotFound(format!("{what} `{raw}`"))))
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The names of systems the caller may see; the others by number.
async fn system_names(portal: &Portal, s: &SignedIn, ids: &[i64]) -> Vec<String> {
    let t = RequestsText::get(s.lang());
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        out.push(match portal.app.gov.system(&s.principal, id).await {
            Ok(sys) => sys.name,
            Err(_) => format!("{}{id}", t.system_no),
        });
    }
    out
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

impl ListQuery {
    /// The status the list is filtered by (`parse` and `as_str`: of its status type), and
    /// the service's filter and page.
    fn read<S: Copy>(
        &self,
        parse: fn(&str) -> Option<S>,
        as_str: fn(S) -> &'static str,
    ) -> (Option<S>, ListFilter, Page) {
        let status = parse(self.status.trim());
        let filter = ListFilter {
            status: status.map(|st| as_str(st).to_owned()),
            ..Default::default()
        };
        (status, filter, page_after(Some(&self.after)))
    }
}

#[derive(Debug, Default, Deserialize)]
struct DoneQuery {
    #[serde(default)]
    done: String,
}

// ---- GET /requests --------------------------------------------------------------------

/// One row of the list of requests.
struct RequestRow {
    id: i64,
    dataset: String,
    consumer: String,
    attributes: String,
    status: &'static str,
    status_text: &'static str,
    created: String,
    due: String,
    left: Option<Left>,
}

fn request_row(lang: Lang, now: Time, r: &AccessRequest) -> RequestRow {
    let t = RequestsText::get(lang);
    RequestRow {
        id: r.id,
        dataset: r.dataset.clone(),
        consumer: r.consumer_organisation.clone(),
        attributes: r.attributes.join(", "),
        status: r.status.as_str(),
        status_text: request_status(t, r.status),
        created: fmt_time(r.created_at),
        due: fmt_time(r.due_at),
        left: (r.status == RequestStatus::Pending).then(|| time_left(lang, now, r.due_at)),
    }
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    shell: Shell,
    t: &'static RequestsText,
    intro: &'static str,
    show_consumer: bool,
    options: Vec<StatusOption>,
    rows: Vec<RequestRow>,
    next: Option<String>,
}

async fn requests_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<ListQuery>,
) -> Result<Response, PortalError> {
    let t = RequestsText::get(s.lang());
    let (status, filter, page) = q.read(RequestStatus::parse, RequestStatus::as_str);
    let items = portal
        .app
        .gov
        .requests(&s.principal, filter, false, &page)
        .await
        .map_err(|e| s.fail(e))?;
    let (items, after) = split_next(items, |r| r.id);
    let param = status.map(|st| ("status", st.as_str()));
    let next = next_href("/requests", param, after);
    let now = Time::now();
    let options = status_options(
        &[
            RequestStatus::Pending,
            RequestStatus::Approved,
            RequestStatus::Refused,
            RequestStatus::Withdrawn,
        ],
        status,
        RequestStatus::as_str,
        |st| request_status(t, st),
    );
    let intro = match s.role() {
        Role::Consumer => t.requests_intro_consumer,
        Role::Owner => t.requests_intro_owner,
        _ => t.requests_intro_admin,
    };
    Ok(render(&RequestsPage {
        shell: s.shell(t.requests_title),
        t,
        intro,
        show_consumer: s.role() != Role::Consumer,
        options,
        rows: items
            .iter()
            .map(|r| request_row(s.lang(), now, r))
            .collect(),
        next,
    }))
}

// ---- GET /requests/{id} and its forms -------------------------------------------------

/// A request as its page shows it.
struct RequestView {
    id: i64,
    dataset: String,
    dataset_href: String,
    owner: String,
    consumer: String,
    attributes: Vec<String>,
    row_scope: Option<String>,
    purpose: String,
    legal_basis: String,
    systems: Vec<String>,
    valid_from: String,
    /// The end as [`fmt_end`] shows it.
    valid_to: String,
    /// The last date an approval may end at the end of (`YYYY-MM-DD`): the shown end when it
    /// is a whole day.
    last_day: String,
    status: &'static str,
    status_text: &'static str,
    created: String,
    created_by: String,
    due: String,
    left: Option<Left>,
    decided_at: Option<String>,
    decided_by_label: &'static str,
    decided_by: Option<String>,
    reason_label: &'static str,
    reason: Option<String>,
    agreement_id: Option<i64>,
}

/// What the approval granted, when it made an agreement the caller may see.
struct GrantView {
    attributes: Vec<String>,
    row_scope: Option<String>,
    valid_to: String,
    narrowed: bool,
}

/// A requested attribute as a checkbox of the approve form.
struct AttrBox {
    name: String,
    checked: bool,
}

/// The approve form as shown: all requested attributes ticked at first, else as posted.
struct ApproveState {
    attrs: Vec<AttrBox>,
    row_scope: String,
    valid_to: String,
    note: String,
}

impl ApproveState {
    fn fresh(r: &AccessRequest) -> ApproveState {
        let all = ApproveForm {
            attributes: r.attributes.clone(),
            ..ApproveForm::default()
        };
        ApproveState::posted(r, &all)
    }

    fn posted(r: &AccessRequest, form: &ApproveForm) -> ApproveState {
        ApproveState {
            attrs: r
                .attributes
                .iter()
                .map(|a| AttrBox {
                    name: a.clone(),
                    checked: form.attributes.contains(a),
                })
                .collect(),
            row_scope: form.row_scope.clone(),
            valid_to: form.valid_to.clone(),
            note: form.note.clone(),
        }
    }
}

/// What a re-shown request page keeps of a refused form.
#[derive(Default)]
struct RequestForms {
    approve: Option<ApproveForm>,
    refuse_reason: String,
    withdraw_reason: String,
    error: Option<FormError>,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    shell: Shell,
    t: &'static RequestsText,
    r: RequestView,
    grant: Option<GrantView>,
    history: Vec<HistoryView>,
    can_withdraw: bool,
    can_decide: bool,
    approve: ApproveState,
    refuse_reason: String,
    withdraw_reason: String,
    error: Option<FormError>,
}

impl RequestPage {
    /// Whether the error names `field` of `form`.
    fn bad(&self, form: &str, field: &str) -> bool {
        self.error
            .as_ref()
            .is_some_and(|e| e.form == form && e.field == field)
    }

    /// The error's message (empty without one).
    fn error_message(&self) -> &str {
        self.error.as_ref().map_or("", |e| e.message.as_str())
    }

    async fn load(
        portal: &Portal,
        s: &SignedIn,
        id: i64,
        forms: RequestForms,
    ) -> Result<RequestPage, PortalError> {
        let gov = &portal.app.gov;
        let lang = s.lang();
        let t = RequestsText::get(lang);
        let r = gov.request(&s.principal, id).await.map_err(|e| s.fail(e))?;
        let history = gov
            .history(&s.principal, "request", id)
            .await
            .map_err(|e| s.fail(e))?;
        let grant = match r.agreement_id {
            Some(aid) => gov
                .agreement(&s.principal, aid)
                .await
                .ok()
                .map(|a| GrantView {
                    narrowed: a.attributes != r.attributes
                        || a.row_scope != r.row_scope
                        || a.valid_to != r.valid_to,
                    attributes: a.attributes,
                    row_scope: a.row_scope,
                    valid_to: fmt_end(a.valid_to),
                }),
            None => None,
        };
        let org = s.organisation();
        let pending = r.status == RequestStatus::Pending;
        let can_withdraw =
            pending && s.role() == Role::Consumer && org == Some(r.consumer_organisation.as_str());
        let can_decide = pending && Governance::require_decider(&s.principal, &r).is_ok();
        let approve = match &forms.approve {
            Some(f) => ApproveState::posted(&r, f),
            None => ApproveState::fresh(&r),
        };
        let systems = system_names(portal, s, &r.systems).await;
        let view = RequestView {
            id: r.id,
            dataset_href: format!("/datasets/{}", encode_component(&r.dataset)),
            dataset: r.dataset.clone(),
            owner: r.owner_organisation.clone(),
            consumer: r.consumer_organisation.clone(),
            attributes: r.attributes.clone(),
            row_scope: r.row_scope.clone(),
            purpose: r.purpose.clone(),
            legal_basis: r.legal_basis.clone(),
            systems,
            valid_from: fmt_time(r.valid_from),
            valid_to: fmt_end(r.valid_to),
            last_day: last_day(r.valid_to),
            status: r.status.as_str(),
            status_text: request_status(t, r.status),
            created: fmt_time(r.created_at),
            created_by: r.created_by.clone(),
            due: fmt_time(r.due_at),
            left: pending.then(|| time_left(lang, Time::now(), r.due_at)),
            decided_at: r.decided_at.map(fmt_time),
            decided_by_label: if r.status == RequestStatus::Withdrawn {
                t.withdrawn_by
            } else {
                t.decided_by
            },
            decided_by: r.decided_by.clone(),
            reason_label: match r.status {
                RequestStatus::Refused => t.reason_refused,
                RequestStatus::Withdrawn => t.reason_withdrawn,
                _ => t.reason_note,
            },
            reason: r.reason.clone().filter(|x| !x.is_empty()),
            agreement_id: r.agreement_id,
        };
        Ok(RequestPage {
            shell: s.shell(format!("{}{id}", t.request_title)),
            t,
            r: view,
            grant,
            history: history_view(t, history),
            can_withdraw,
            can_decide,
            approve,
            refuse_reason: forms.refuse_reason,
            withdraw_reason: forms.withdraw_reason,
            error: forms.error,
        })
    }
}

async fn request_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let id = parse_id(&s, "request", &raw)?;
    let t = RequestsText::get(s.lang());
    let mut page = RequestPage::load(&portal, &s, id, RequestForms::default()).await?;
    page.shell = page.shell.with_done(
        Some(&q.done),
        &[
            ("created", t.done_created),
            ("withdrawn", t.done_withdrawn),
            ("approved", t.done_approved),
            ("refused", t.done_refused),
        ],
    );
    Ok(render(&page))
}

/// After a decision on request `id` (`form`, the form that posted it): the request's page
/// with the confirmation `done`, or, when the service refused the input, the page again
/// with `forms` as they were filled in and the refusal; any other refusal's error page.
async fn decided<T>(
    portal: &Portal,
    s: &SignedIn,
    id: i64,
    result: Result<T, GovError>,
    form: &'static str,
    done: &str,
    forms: RequestForms,
) -> Result<Response, PortalError> {
    match result {
        Ok(_) => Ok(see_other(&format!("/requests/{id}?done={done}"))),
        Err(e) if refuses_input(&e) => {
            let forms = RequestForms {
                error: Some(FormError::of(&s.shell(""), form, &e)),
                ..forms
            };
            let page = RequestPage::load(portal, s, id, forms).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(s.fail(e)),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn withdraw(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<ReasonForm>,
) -> Result<Response, PortalError> {
    let id = parse_id(&s, "request", &raw)?;
    let reason = non_empty(&form.reason);
    let result = portal
        .app
        .gov
        .withdraw(&s.principal, id, reason.as_deref())
        .await;
    let forms = RequestForms {
        withdraw_reason: form.reason,
        ..Default::default()
    };
    decided(&portal, &s, id, result, "withdraw", "withdrawn", forms).await
}

#[derive(Debug, Default, Clone, Deserialize)]
struct ApproveForm {
    #[serde(default)]
    attributes: Vec<String>,
    #[serde(default)]
    row_scope: String,
    #[serde(default)]
    valid_to: String,
    #[serde(default)]
    note: String,
}

async fn approve(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<ApproveForm>,
) -> Result<Response, PortalError> {
    let id = parse_id(&s, "request", &raw)?;
    let t = RequestsText::get(s.lang());
    let valid_to = match non_empty(&form.valid_to) {
        None => Ok(None),
        Some(d) => riga_end_of_day(&d)
            .map(Some)
            .ok_or_else(|| invalid("valid_to", t.bad_date)),
    };
    let result = match valid_to {
        Ok(valid_to) => {
            let input = ApprovalInput {
                attributes: Some(form.attributes.clone()),
                row_scope: non_empty(&form.row_scope),
                valid_to,
                note: non_empty(&form.note),
            };
            portal.app.gov.approve(&s.principal, id, input).await
        }
        Err(e) => Err(e),
    };
    let forms = RequestForms {
        approve: Some(form),
        ..Default::default()
    };
    decided(&portal, &s, id, result, "approve", "approved", forms).await
}

async fn refuse(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<ReasonForm>,
) -> Result<Response, PortalError> {
    let id = parse_id(&s, "request", &raw)?;
    let result = portal.app.gov.refuse(&s.principal, id, &form.reason).await;
    let forms = RequestForms {
        refuse_reason: form.reason,
        ..Default::default()
    };
    decided(&portal, &s, id, result, "refuse", "refused", forms).await
}

// ---- GET /inbox -----------------------------------------------------------------------

/// A decided request in the inbox's recent decisions.
struct DecidedRow {
    id: i64,
    dataset: String,
    consumer: String,
    status: &'static str,
    status_text: &'static str,
    decided: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    shell: Shell,
    t: &'static RequestsText,
    rows: Vec<RequestRow>,
    overdue: usize,
    truncated: bool,
    recent: Vec<DecidedRow>,
}

/// The pending requests (at most about [`INBOX_MAX`]), and whether there are more.
async fn pending_requests(
    portal: &Portal,
    s: &SignedIn,
) -> Result<(Vec<AccessRequest>, bool), GovError> {
    let (gov, p) = (&portal.app.gov, &s.principal);
    read_all(
        200,
        INBOX_MAX,
        |r: &AccessRequest| r.id.to_string(),
        move |page| {
            let filter = ListFilter {
                status: Some(RequestStatus::Pending.as_str().to_owned()),
                ..Default::default()
            };
            async move { gov.requests(p, filter, false, &page).await }
        },
    )
    .await
}

async fn inbox_page(State(portal): State<Portal>, s: SignedIn) -> Result<Response, PortalError> {
    if s.role() == Role::Consumer {
        return Ok(see_other("/requests"));
    }
    let lang = s.lang();
    let t = RequestsText::get(lang);
    let (mut pending, truncated) = pending_requests(&portal, &s).await.map_err(|e| s.fail(e))?;
    pending.sort_by_key(|r| (r.due_at, r.id));
    let now = Time::now();
    let rows: Vec<RequestRow> = pending.iter().map(|r| request_row(lang, now, r)).collect();
    let overdue = rows
        .iter()
        .filter(|r| r.left.as_ref().is_some_and(|l| l.overdue))
        .count();
    let mut decided = Vec::new();
    for st in [RequestStatus::Approved, RequestStatus::Refused] {
        let filter = ListFilter {
            status: Some(st.as_str().to_owned()),
            ..Default::default()
        };
        let page = Page {
            limit: RECENT as i64,
            after: None,
        };
        decided.extend(
            portal
                .app
                .gov
                .requests(&s.principal, filter, false, &page)
                .await
                .map_err(|e| s.fail(e))?,
        );
    }
    decided.sort_by_key(|r| std::cmp::Reverse((r.decided_at, r.id)));
    let recent = decided
        .iter()
        .take(RECENT)
        .map(|r| DecidedRow {
            id: r.id,
            dataset: r.dataset.clone(),
            consumer: r.consumer_organisation.clone(),
            status: r.status.as_str(),
            status_text: request_status(t, r.status),
            decided: r.decided_at.map(fmt_time).unwrap_or_default(),
        })
        .collect();
    Ok(render(&InboxPage {
        shell: s.shell(t.inbox_title),
        t,
        rows,
        overdue,
        truncated,
        recent,
    }))
}

// ---- agreements -----------------------------------------------------------------------

/// One row of the list of agreements.
struct AgreementRow {
    id: i64,
    status: &'static str,
    status_text: &'static str,
    dataset: String,
    consumer: String,
    attributes: String,
    row_scope: Option<String>,
    valid_to: String,
}

#[derive(Template)]
#[template(path = "agreements.html")]
struct AgreementsPage {
    shell: Shell,
    t: &'static RequestsText,
    intro: &'static str,
    options: Vec<StatusOption>,
    rows: Vec<AgreementRow>,
    next: Option<String>,
}

async fn agreements_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<ListQuery>,
) -> Result<Response, PortalError> {
    let t = RequestsText::get(s.lang());
    let (status, filter, page) = q.read(AgreementStatus::parse, AgreementStatus::as_str);
    let items = portal
        .app
        .gov
        .agreements(&s.principal, filter, &page)
        .await
        .map_err(|e| s.fail(e))?;
    let (items, after) = split_next(items, |a| a.id);
    let param = status.map(|st| ("status", st.as_str()));
    let next = next_href("/agreements", param, after);
    let now = Time::now();
    let options = status_options(
        &[
            AgreementStatus::Active,
            AgreementStatus::Revoked,
            AgreementStatus::Expired,
        ],
        status,
        AgreementStatus::as_str,
        |st| agreement_status(t, st),
    );
    let rows = items
        .iter()
        .map(|a| {
            let st = a.status_at(now);
            AgreementRow {
                id: a.id,
                status: st.as_str(),
                status_text: agreement_status(t, st),
                dataset: a.dataset.clone(),
                consumer: a.consumer_organisation.clone(),
                attributes: a.attributes.join(", "),
                row_scope: a.row_scope.clone(),
                valid_to: fmt_end(a.valid_to),
            }
        })
        .collect();
    let intro = match s.role() {
        Role::Consumer => t.agreements_intro_consumer,
        Role::Owner => t.agreements_intro_owner,
        _ => t.agreements_intro_admin,
    };
    Ok(render(&AgreementsPage {
        shell: s.shell(t.agreements_title),
        t,
        intro,
        options,
        rows,
        next,
    }))
}

/// An agreement as its page shows it.
struct AgreementView {
    id: i64,
    request_id: i64,
    dataset: String,
    dataset_href: String,
    owner: String,
    consumer: String,
    attributes: Vec<String>,
    row_scope: Option<String>,
    purpose: String,
    legal_basis: String,
    systems: Vec<String>,
    valid_from: String,
    valid_to: String,
    status: &'static str,
    status_text: &'static str,
    created: String,
    approved_by: String,
    revoked_at: Option<String>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
}

#[derive(Template)]
#[template(path = "agreement.html")]
struct AgreementPage {
    shell: Shell,
    t: &'static RequestsText,
    a: AgreementView,
    history: Vec<HistoryView>,
    can_revoke: bool,
    revoke_reason: String,
    error: Option<FormError>,
}

impl AgreementPage {
    async fn load(
        portal: &Portal,
        s: &SignedIn,
        id: i64,
        revoke_reason: String,
        error: Option<FormError>,
    ) -> Result<AgreementPage, PortalError> {
        let gov = &portal.app.gov;
        let t = RequestsText::get(s.lang());
        let a: Agreement = gov
            .agreement(&s.principal, id)
            .await
            .map_err(|e| s.fail(e))?;
        let history = gov
            .history(&s.principal, "agreement", id)
            .await
            .map_err(|e| s.fail(e))?;
        let status = a.status_at(Time::now());
        let can_revoke = status == AgreementStatus::Active
            && Governance::require_admin_or_owner_of(&s.principal, &a.owner_organisation).is_ok();
        let systems = system_names(portal, s, &a.systems).await;
        let view = AgreementView {
            id: a.id,
            request_id: a.request_id,
            dataset_href: format!("/datasets/{}", encode_component(&a.dataset)),
            dataset: a.dataset,
            owner: a.owner_organisation,
            consumer: a.consumer_organisation,
            attributes: a.attributes,
            row_scope: a.row_scope,
            purpose: a.purpose,
            legal_basis: a.legal_basis,
            systems,
            valid_from: fmt_time(a.valid_from),
            valid_to: fmt_end(a.valid_to),
            status: status.as_str(),
            status_text: agreement_status(t, status),
            created: fmt_time(a.created_at),
            approved_by: a.approved_by,
            revoked_at: a.revoked_at.map(fmt_time),
            revoked_by: a.revoked_by,
            revoke_reason: a.revoke_reason.filter(|x| !x.is_empty()),
        };
        Ok(AgreementPage {
            shell: s.shell(format!("{}{id}", t.agreement_title)),
            t,
            a: view,
            history: history_view(t, history),
            can_revoke,
            revoke_reason,
            error,
        })
    }
}

async fn agreement_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let id = parse_id(&s, "agreement", &raw)?;
    let t = RequestsText::get(s.lang());
    let mut page = AgreementPage::load(&portal, &s, id, String::new(), None).await?;
    page.shell = page
        .shell
        .with_done(Some(&q.done), &[("revoked", t.done_revoked)]);
    Ok(render(&page))
}

async fn revoke(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<ReasonForm>,
) -> Result<Response, PortalError> {
    let id = parse_id(&s, "agreement", &raw)?;
    match portal.app.gov.revoke(&s.principal, id, &form.reason).await {
        Ok(_) => Ok(see_other(&format!("/agreements/{id}?done=revoked"))),
        Err(e) if refuses_input(&e) => {
            let error = Some(FormError::of(&s.shell(""), "revoke", &e));
            let page = AgreementPage::load(&portal, &s, id, form.reason, error).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(s.fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    fn left(lang: Lang, ms: i64) -> Left {
        let now = Time(1_800_000_000_000);
        time_left(lang, now, Time(now.0 + ms))
    }

    #[test]
    fn time_left_in_days_hours_and_minutes() {
        let l = left(Lang::En, 3 * DAY + 4 * HOUR + 20 * MIN);
        assert_eq!((l.overdue, l.text.as_str()), (false, "3 days 4 h left"));
        assert_eq!(left(Lang::En, DAY).text, "1 day left");
        assert_eq!(left(Lang::En, 5 * HOUR + 10 * MIN).text, "5 h 10 min left");
        assert_eq!(left(Lang::En, 2 * HOUR).text, "2 h left");
        assert_eq!(left(Lang::En, 12 * MIN + 59_999).text, "12 min left");
        assert_eq!(left(Lang::En, 0).text, "0 min left");
        assert_eq!(left(Lang::Lv, 3 * DAY + 4 * HOUR).text, "vēl 3 dienas 4 h");
        assert_eq!(left(Lang::Lv, 21 * DAY).text, "vēl 21 diena");
        assert_eq!(left(Lang::Lv, 11 * DAY).text, "vēl 11 dienas");
    }

    #[test]
    fn overdue_says_by_how_much() {
        let l = left(Lang::En, -(2 * DAY + 30 * MIN));
        assert_eq!((l.overdue, l.text.as_str()), (true, "overdue by 2 days"));
        assert_eq!(left(Lang::En, -DAY - HOUR).text, "overdue by 1 day 1 h");
        assert_eq!(left(Lang::En, -3 * MIN).text, "overdue by 3 min");
        assert_eq!(left(Lang::Lv, -2 * DAY).text, "nokavēts par 2 dienām");
        assert_eq!(left(Lang::Lv, -DAY).text, "nokavēts par 1 dienu");
        assert!(left(Lang::Lv, -MIN).overdue);
    }

    #[test]
    fn an_end_date_is_the_end_of_that_day_in_latvia() {
        // Winter: UTC+2, so the end of 31 December is 22:00 UTC.
        assert_eq!(
            riga_end_of_day("2026-12-31").map(|t| t.to_rfc3339()),
            Some("2026-12-31T22:00:00.000Z".to_owned())
        );
        // Summer: UTC+3.
        assert_eq!(
            riga_end_of_day(" 2026-07-15 ").map(|t| t.to_rfc3339()),
            Some("2026-07-15T21:00:00.000Z".to_owned())
        );
        assert_eq!(riga_end_of_day("15.07.2026"), None);
        assert_eq!(riga_end_of_day(""), None);
    }

    #[test]
    fn the_date_shown_as_the_end_gives_that_end_back() {
        for day in ["2026-12-31", "2026-07-15", "2026-03-28", "2026-10-25"] {
            let end = riga_end_of_day(day).unwrap();
            assert_eq!(fmt_end(end), day);
            assert_eq!(last_day(end), day);
        }
        // An end within a day: the last whole day before it.
        let noon = Time(riga_end_of_day("2026-12-30").unwrap().0 + 12 * HOUR);
        assert_eq!(fmt_end(noon), "2026-12-31 12:00");
        assert_eq!(last_day(noon), "2026-12-30");
        assert!(riga_end_of_day(&last_day(noon)).unwrap() <= noon);
    }
}
