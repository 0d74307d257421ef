//! Data flows and schema changes: the datasets an owner feeds and how, registering a new
//! dataset, a dataset's load history and settings, and schema change requests with the
//! admin's decisions.
//!
//! - `GET /flows`: the datasets of the owner's organisation (an admin: all), their current
//!   version, rows and last load, and how to feed them.
//! - `GET/POST /flows/new`: register a new dataset ([`Governance::register_dataset`]); the
//!   attributes are rows of one table form (`?rows=N` for more rows, no script needed).
//! - `GET /flows/{name}`: one dataset's load history ([`Governance::loads`], newest first,
//!   paginated), its schema changes, and its settings; `POST /flows/{name}/settings` saves
//!   the settings ([`Governance::update_dataset`]).
//! - `GET/POST /datasets/{name}/changes/new`: file a schema change
//!   ([`Governance::file_change_with_reason`]), the current definition pre-filled.
//! - `GET /changes`, `GET /changes/{id}`: change requests (pending ones first) and one
//!   request's diff, affected agreements, proposed definition and history; `POST
//!   /changes/{id}/accept` and `/changes/{id}/reject` for the admin
//!   ([`Governance::accept_change`], [`Governance::reject_change`]).
//!
//! Every rule is the service's: the pages only turn forms into the service's input and
//! show its answer, a refusal as a readable message with the form as it was filled in.
//!
//! [`Governance::register_dataset`]: dagr_admin_api::Governance::register_dataset
//! [`Governance::loads`]: dagr_admin_api::Governance::loads
//! [`Governance::update_dataset`]: dagr_admin_api::Governance::update_dataset
//! [`Governance::file_change_with_reason`]: dagr_admin_api::Governance::file_change_with_reason
//! [`Governance::accept_change`]: dagr_admin_api::Governance::accept_change
//! [`Governance::reject_change`]: dagr_admin_api::Governance::reject_change

use std::collections::HashSet;

use askama::Template;
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::{get, post};
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::{
    ChangeRequest, ChangeStatus, HistoryEntry, Load, LoadChannel, LoadMode, LoadStatus,
    Organisation, SystemKind,
};
use dagr_admin_api::store::Page;
use dagr_engine::arrow::datatypes::{DataType, TimeUnit};
use dagr_engine::definition::parse_data_type;
use dagr_engine::{Attribute, DatasetDefinition, Role};
use serde::Deserialize;

use crate::Portal;
use crate::i18n::{Common, texts};
use crate::session::{Posted, SignedIn};
use crate::web::{
    PortalError, Shell, encode_component, fmt_time, invalid, message, next_href, organisations,
    page_after, parse_ids, render, render_status, see_other, split_next, status_lead,
};

texts! {
    /// Texts of the data flow and schema change pages.
    pub(crate) struct FlowsText {
        flows_title: "Datu plūsmas", "Data flows";
        flows_intro: "Datu kopas, kuras jūsu organizācija uztur un piegādā DAGR, un to pēdējās ielādes.", "The datasets your organisation keeps and feeds into DAGR, and their last loads.";
        flows_intro_admin: "Visas DAGR reģistrētās datu kopas un to pēdējās ielādes.", "Every dataset registered in DAGR, and its last load.";
        register_link: "Reģistrēt jaunu datu kopu", "Register a new dataset";
        changes_link: "Shēmas izmaiņu pieprasījumi", "Schema change requests";
        flows_caption: "Datu kopas un to pēdējās ielādes", "Datasets and their last loads";
        no_flows: "Jūsu organizācijai nav reģistrētu datu kopu.", "Your organisation has no registered datasets.";
        col_dataset: "Datu kopa", "Dataset";
        col_owner: "Turētājs", "Owner";
        col_version: "Versija", "Version";
        col_rows: "Ieraksti", "Rows";
        col_last_load: "Pēdējā ielāde", "Last load";
        col_feed: "Kā piegādāt datus", "How to feed it";
        no_loads: "Vēl nav ielāžu", "No loads yet";
        made_outside: "Ielāžu vēsturē nav; pašreizējā versija izveidota", "None in the load history; the current version was made";
        not_loaded: "nav ielādēta", "not loaded";
        feed_title: "Kā piegādāt datus", "How to feed a dataset";
        feed_connector: "Ar savienotāju (Arrow Flight) no Parquet, CSV, NDJSON vai Arrow faila, direktorijas vai PostgreSQL tabulas. Vajadzīga jūsu piegādātāja sistēmas atslēga (DAGR_TOKEN) un servera Flight adrese (DAGR_SERVER):", "With the connector (Arrow Flight) from a Parquet, CSV, NDJSON or Arrow file, a directory or a PostgreSQL table. It needs a token of your provider system (DAGR_TOKEN) and the server's Flight address (DAGR_SERVER):";
        feed_http: "Vai augšupielādējiet visu momentuzņēmumu kā vienu Parquet failu ar HTTP:", "Or upload a whole snapshot as one Parquet file over HTTP:";
        feed_history: "Katra ielāde, arī atteiktā, ir datu kopas ielāžu vēsturē ar atteikuma iemeslu. Atteikta ielāde neko nemaina: spēkā paliek iepriekšējā versija.", "Every load, refused ones too, is in the dataset's load history with the reason of a refusal. A refused load changes nothing: the previous version stays current.";
        facts_title: "Par datu kopu", "About the dataset";
        primary_key: "Primārā atslēga", "Primary key";
        loaded_at: "Pašreizējā versija izveidota", "Current version made";
        attributes_count: "Atribūti", "Attributes";
        sla: "Dienas piekļuves pieprasījuma izlemšanai", "Days to decide an access request";
        file_change_link: "Pieteikt shēmas izmaiņas", "File a schema change";
        back_flows: "Visas datu plūsmas", "All data flows";
        loads_title: "Ielāžu vēsture", "Load history";
        loads_caption: "Ielādes, jaunākās vispirms", "Loads, newest first";
        no_loads_long: "Šai datu kopai vēl nav ielāžu vēstures.", "This dataset has no loads in its history yet.";
        col_time: "Laiks", "Time";
        col_channel: "Kanāls", "Channel";
        col_mode: "Veids", "Mode";
        col_status: "Statuss", "Status";
        col_bytes: "Apjoms", "Size";
        col_details: "Sīkāk", "Details";
        loaded_by: "Ielādēja", "Loaded by";
        channel_http: "HTTP augšupielāde", "HTTP upload";
        channel_flight: "Arrow Flight", "Arrow Flight";
        channel_local: "Servera ielāde (demonstrācija)", "Loaded by the server (demo)";
        mode_snapshot: "viss momentuzņēmums", "whole snapshot";
        mode_changes: "izmaiņu kopa", "change set";
        load_committed: "ielādēta", "committed";
        load_refused: "atteikta", "refused";
        load_receiving: "saņem datus", "receiving";
        load_validating: "pārbauda", "validating";
        refused_because: "Atteikuma iemesls", "Why it was refused";
        dataset_changes_title: "Šīs datu kopas shēmas izmaiņas", "Schema changes of this dataset";
        settings_title: "Iestatījumi", "Settings";
        sla_hint: "No 1 līdz 365 dienām; ja nenorāda, 10.", "1 to 365 days; 10 if left empty.";
        systems_legend: "Piegādātāja sistēmas, kas piegādā šo datu kopu", "Provider systems that feed this dataset";
        no_provider_systems: "Organizācijai nav piegādātāja sistēmu.", "The organisation has no provider systems.";
        systems_admin_hint: "Piegādātāja sistēmas var norādīt datu kopas lapā pēc reģistrēšanas.", "Provider systems can be named on the dataset's page once it is registered.";
        save_settings: "Saglabāt iestatījumus", "Save the settings";
        done_registered: "Datu kopa reģistrēta. Tagad piegādājiet tās pirmo momentuzņēmumu.", "The dataset is registered. Now feed its first snapshot.";
        done_saved: "Iestatījumi saglabāti.", "The settings are saved.";
        new_title: "Jaunas datu kopas reģistrēšana", "Register a new dataset";
        new_intro: "Aprakstiet datu kopu un tās atribūtus. Pēc reģistrēšanas to piegādā ar savienotāju vai HTTP augšupielādi.", "Describe the dataset and its attributes. Once registered, feed it with the connector or an HTTP upload.";
        name_label: "Datu kopas nosaukums", "Dataset name";
        name_hint: "Mazie latīņu burti, cipari un _, sākas ar burtu (piemēram, vehicles).", "Lower-case letters, digits and _, starting with a letter (for example vehicles).";
        owner_label: "Turētāja organizācija", "Owner organisation";
        choose: "— izvēlieties —", "— choose —";
        description_label: "Apraksts", "Description";
        description_hint: "Ko datu kopa satur; to rāda datu katalogā.", "What the dataset holds, as the catalog shows it.";
        attributes_title: "Atribūti", "Attributes";
        attributes_hint: "Katra rinda ir viens atribūts (kolonna). Pilnīgi tukšas rindas netiek ņemtas vērā. Nosaukumiem ir tie paši noteikumi kā datu kopas nosaukumam. Atslēgas atribūtiem (vismaz vienam) jābūt tekstam vai veselam skaitlim.", "Each row is one attribute (column). Wholly empty rows are ignored. Names follow the same rules as the dataset's name. Key attributes (at least one) must be text or whole numbers.";
        personal_hint: "Personas datiem norādiet kolonnu, kas identificē datu subjektu (piemēram, personal_code): katra to izmantošana tiek reģistrēta.", "For personal data, name the column that identifies the data subject (for example personal_code): every use of them is logged.";
        attributes_caption: "Atribūti, pa vienam rindā", "Attributes, one a row";
        col_name: "Nosaukums", "Name";
        col_type: "Tips", "Type";
        col_description: "Apraksts", "Description";
        col_required: "Obligāts", "Required";
        col_key: "Atslēga", "Key";
        col_personal: "Personas dati", "Personal data";
        col_subject: "Subjekta kolonna", "Subject column";
        row: "rinda", "row";
        more_rows: "Vairāk tukšu rindu", "More empty rows";
        more_rows_hint: "Izmantojiet, pirms sākat aizpildīt: lapa tiek atvērta no jauna.", "Use it before filling in: the page opens anew.";
        register_button: "Reģistrēt datu kopu", "Register the dataset";
        type_utf8: "teksts", "text";
        type_int64: "vesels skaitlis", "whole number";
        type_int32: "vesels skaitlis, 32 bitu", "whole number, 32-bit";
        type_float64: "daļskaitlis", "floating-point number";
        type_decimal: "summa: 18 cipari, 2 aiz komata", "amount: 18 digits, 2 decimals";
        type_bool: "jā/nē", "yes/no";
        type_date: "datums", "date";
        type_ts: "datums un laiks", "date and time";
        type_ts_utc: "datums un laiks UTC", "date and time in UTC";
        bad_type: "nav tips, ko DAGR pazīst", "is not a type DAGR knows";
        bad_number: "jābūt veselam skaitlim", "must be a whole number";
        too_many_rows: "Atribūtu rindu skaits veidlapā", "Attribute rows in the form";
        rows_at_most: "lielākais atļautais skaits", "the most allowed";
        rows_not_kept: "Tik daudz rindu netiek rādīts atkārtoti: zemāk ir veidlapas sākotnējās rindas.", "So many rows are not shown again: the rows below are the form's starting ones.";
        change_title: "Shēmas izmaiņas", "Schema change";
        change_intro: "Labojiet pašreizējo definīciju: pievienojiet atribūtus tukšajās rindās, mainiet aprakstus vai tipus; lai atribūtu noņemtu, notīriet tā rindas nosaukumu un aprakstu. Izmaiņas, kas neskar nevienu spēkā esošu līgumu, stājas spēkā uzreiz; pārējās izlemj administrators.", "Edit the current definition: add attributes in the empty rows, change descriptions or types; to remove an attribute, clear its row's name and description. A change that breaks no active agreement applies at once; others wait for an administrator.";
        change_fixed: "Nosaukumu, turētāju un primāro atslēgu mainīt nevar.", "The name, owner and primary key cannot change.";
        reason_label: "Izmaiņu pamatojums", "Why the schema changes";
        reason_hint: "Tas paliek pieprasījuma vēsturē; administrators to redz, izlemjot izmaiņas, kas skar līgumus.", "It stays in the request's history; the administrator sees it when deciding a change that breaks agreements.";
        file_button: "Pieteikt izmaiņas", "File the change";
        changes_title: "Shēmas izmaiņas", "Schema changes";
        changes_intro_admin: "Visu datu kopu shēmas izmaiņu pieprasījumi; gaidošie vispirms.", "Schema change requests of every dataset; pending ones first.";
        changes_intro_owner: "Jūsu organizācijas datu kopu shēmas izmaiņu pieprasījumi; gaidošie vispirms.", "Schema change requests of your organisation's datasets; pending ones first.";
        changes_caption: "Shēmas izmaiņu pieprasījumi", "Schema change requests";
        no_changes: "Nav shēmas izmaiņu pieprasījumu.", "No schema change requests.";
        col_no: "Nr.", "No.";
        col_filed: "Pieteica", "Filed by";
        col_summary: "Izmaiņas", "Changes";
        status_label: "Statuss", "Status";
        change_pending: "gaida lēmumu", "pending";
        change_applied: "stājās spēkā uzreiz", "applied";
        change_accepted: "pieņemts", "accepted";
        change_rejected: "noraidīts", "rejected";
        added: "pievienoti", "added";
        removed: "noņemti", "removed";
        retyped: "mainīts tips", "retyped";
        unmarked_personal: "vairs nav personas dati (lietojums netiktu reģistrēts kā līdz šim)", "no longer personal (its use would not be recorded as before)";
        unmarked_title: "Vairs nav personas dati — jāizvērtē administratoram", "No longer personal data — an admin reviews this";
        only_descriptions: "tikai apraksti vai pazīmes", "descriptions or flags only";
        breaking_yes: "nesaderīgas", "breaking";
        breaking_no: "saderīgas", "compatible";
        change_no: "Shēmas izmaiņu pieprasījums Nr.", "Schema change request no.";
        filed_at: "Pieteikts", "Filed";
        decided_by: "Izlēma", "Decided by";
        decided_at: "Izlemts", "Decided";
        reject_reason: "Noraidījuma iemesls", "Reason for rejecting";
        kind_label: "Izmaiņu veids", "Kind of change";
        breaking_long: "Nesaderīgas: atribūti tiek noņemti vai to tips mainās", "Breaking: attributes are removed or change type";
        compatible_long: "Saderīgas: nekas netiek noņemts, un neviens tips nemainās", "Compatible: nothing is removed and no type changes";
        diff_title: "Kas mainās", "What changes";
        added_title: "Pievienoti atribūti", "Added attributes";
        removed_title: "Noņemti atribūti", "Removed attributes";
        retyped_title: "Mainīti tipi", "Changed types";
        no_diff: "Atribūtu saraksts un tipi nemainās; mainās tikai apraksti vai pazīmes.", "The attributes and their types stay; only descriptions or flags change.";
        affected_title: "Skartie līgumi", "Affected agreements";
        affected_intro: "Šie spēkā esošie līgumi piešķir noņemtos vai mainītos atribūtus (vai to datu apjoms tos izmanto). Pieņemot izmaiņas, šie atribūti no līgumiem tiek izņemti; līgums bez atribūtiem vai ar šādu datu apjoma nosacījumu tiek atsaukts.", "These active agreements grant removed or retyped attributes (or their row scope reads them). Accepting the change takes those attributes out of them; an agreement left with none, or whose row scope reads one, is revoked.";
        no_affected: "Izmaiņas neskar nevienu spēkā esošu līgumu.", "The change breaks no active agreement.";
        col_agreement: "Līgums", "Agreement";
        col_consumer: "Saņēmējs", "Consumer";
        col_attributes: "Atribūti", "Attributes";
        definition_title: "Piedāvātā definīcija", "The proposed definition";
        definition_caption: "Piedāvātie atribūti", "The proposed attributes";
        history_title: "Vēsture", "History";
        action_filed: "pieteikts", "filed";
        action_explained: "pamatojums", "reason given";
        action_accepted: "pieņemts", "accepted";
        action_rejected: "noraidīts", "rejected";
        decide_title: "Lēmums", "Decision";
        accept_button: "Pieņemt izmaiņas", "Accept the change";
        accept_confirm: "Pieņemt šīs shēmas izmaiņas? Skartie līgumi tiks sašaurināti vai atsaukti.", "Accept this schema change? The affected agreements are narrowed or revoked.";
        reject_button: "Noraidīt izmaiņas", "Reject the change";
        done_filed_applied: "Izmaiņas pieteiktas un stājās spēkā uzreiz: tās neskar nevienu līgumu.", "The change is filed and applied at once: it breaks no agreement.";
        done_filed_pending: "Izmaiņas pieteiktas. Tās skar spēkā esošus līgumus, tāpēc tās izlems administrators.", "The change is filed. It breaks active agreements, so an administrator decides it.";
        done_accepted: "Izmaiņas pieņemtas; jaunā definīcija ir spēkā.", "The change is accepted; the new definition is in force.";
        done_rejected: "Izmaiņas noraidītas.", "The change is rejected.";
    }
}

/// Empty attribute rows of a new registration form.
const NEW_ROWS: usize = 8;
/// Empty rows added to the current attributes in a change form.
const EXTRA_ROWS: usize = 4;
/// Most rows `?rows=` asks for.
const MAX_ROWS_ASKED: usize = 200;
/// Most attribute rows a posted definition form may have: the engine's most attributes of
/// a dataset plus the most empty rows `?rows=` adds, so every form the portal serves (a
/// change form holds the current attributes and the empty rows) can be sent back. A form
/// with more is refused before anything else is done with it, and its rows are not shown
/// again: the page stays as small as the forms the portal serves.
const MAX_FORM_ROWS: usize = dagr_engine::definition::MAX_ATTRIBUTES + MAX_ROWS_ASKED;

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/flows", get(flows_page))
        .route("/flows/new", get(new_page).post(register))
        .route("/flows/{name}", get(flow_page))
        .route("/flows/{name}/settings", post(save_settings))
        .route(
            "/datasets/{name}/changes/new",
            get(change_form_page).post(file_change),
        )
        .route("/changes", get(changes_page))
        .route("/changes/{id}", get(change_page))
        .route("/changes/{id}/accept", post(accept))
        .route("/changes/{id}/reject", post(reject))
}

// ---- shared pieces -----------------------------------------------------------------

/// A refusal shown above a form: the fitting lead and the service's message.
#[derive(Debug, Clone)]
struct Refusal {
    lead: &'static str,
    detail: String,
}

/// The status and readable refusal of a governance error.
fn refusal(c: &Common, e: &GovError) -> (StatusCode, Refusal) {
    let (status, lead) = match e {
        GovError::Engine(dagr_engine::Error::DatasetExists(_)) => {
            (StatusCode::CONFLICT, c.error_conflict)
        }
        _ => status_lead(c, e),
    };
    (
        status,
        Refusal {
            lead,
            detail: message(e),
        },
    )
}

/// A size for people: `812 B`, `7.0 MiB`.
fn fmt_bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A dataset's current version, its rows and when it was made, for people (all empty when
/// nothing is loaded).
fn current_facts(snapshot: Option<&dagr_engine::Snapshot>) -> (String, String, String) {
    match snapshot {
        Some(x) => (
            x.version().to_string(),
            x.num_rows().to_string(),
            fmt_time(dagr_admin_api::model::Time(
                x.created_at().timestamp_millis(),
            )),
        ),
        None => Default::default(),
    }
}

/// A load as the tables show it.
#[derive(Debug, Clone)]
struct LoadView {
    time: String,
    channel: &'static str,
    mode: &'static str,
    status_class: &'static str,
    status: &'static str,
    version: String,
    rows: String,
    bytes: String,
    reasons: Vec<String>,
    by: String,
}

impl LoadView {
    fn of(t: &FlowsText, l: &Load) -> LoadView {
        let (status_class, status) = match l.status {
            LoadStatus::Committed => ("committed", t.load_committed),
            LoadStatus::Refused => ("refused", t.load_refused),
            LoadStatus::Receiving => ("receiving", t.load_receiving),
            LoadStatus::Validating => ("validating", t.load_validating),
        };
        LoadView {
            time: fmt_time(l.created_at),
            channel: match l.channel {
                LoadChannel::Http => t.channel_http,
                LoadChannel::Flight => t.channel_flight,
                LoadChannel::Local => t.channel_local,
            },
            mode: match l.mode {
                LoadMode::Snapshot => t.mode_snapshot,
                LoadMode::Changes => t.mode_changes,
            },
            status_class,
            status,
            version: l.version.map(|v| v.to_string()).unwrap_or_default(),
            rows: l.rows.map(|v| v.to_string()).unwrap_or_default(),
            bytes: fmt_bytes(l.bytes),
            reasons: l.reasons.clone(),
            by: l.created_by.clone(),
        }
    }
}

/// A change request's status as a tag: (CSS class, text).
fn change_status(t: &FlowsText, s: ChangeStatus) -> (&'static str, &'static str) {
    match s {
        ChangeStatus::Pending => ("pending", t.change_pending),
        ChangeStatus::Applied => ("ok", t.change_applied),
        ChangeStatus::Accepted => ("accepted", t.change_accepted),
        ChangeStatus::Rejected => ("rejected", t.change_rejected),
    }
}

/// A change request as a list shows it.
#[derive(Debug, Clone)]
struct ChangeRow {
    id: i64,
    dataset: String,
    status_class: &'static str,
    status: &'static str,
    filed_by: String,
    filed_at: String,
    summary: String,
    breaking: bool,
}

impl ChangeRow {
    fn of(t: &FlowsText, c: &ChangeRequest) -> ChangeRow {
        let (status_class, status) = change_status(t, c.status);
        let d = &c.changes;
        let mut parts = Vec::new();
        if !d.added.is_empty() {
            parts.push(format!("{}: {}", t.added, d.added.join(", ")));
        }
        if !d.removed.is_empty() {
            parts.push(format!("{}: {}", t.removed, d.removed.join(", ")));
        }
        if !d.retyped.is_empty() {
            let list: Vec<String> = d
                .retyped
                .iter()
                .map(|r| format!("{} ({} → {})", r.name, r.from, r.to))
                .collect();
            parts.push(format!("{}: {}", t.retyped, list.join(", ")));
        }
        if !d.unmarked_personal.is_empty() {
            let list = d.unmarked_personal.join(", ");
            parts.push(format!("{}: {list}", t.unmarked_personal));
        }
        if parts.is_empty() {
            parts.push(t.only_descriptions.to_owned());
        }
        ChangeRow {
            id: c.id,
            dataset: c.dataset.clone(),
            status_class,
            status,
            filed_by: c.filed_by.clone(),
            filed_at: fmt_time(c.filed_at),
            summary: parts.join("; "),
            breaking: !d.removed.is_empty()
                || !d.retyped.is_empty()
                || !d.unmarked_personal.is_empty(),
        }
    }
}

// ---- the attribute rows of the definition forms ----------------------------------------

/// A type the forms offer: its Arrow name (the value) and what it is.
#[derive(Debug, Clone)]
struct TypeOption {
    value: String,
    label: String,
}

/// The types the forms offer (the same few in every row's choice). A row whose type is
/// not one of them (an existing attribute's other type, or a posted type the engine does
/// not know) gets it as an extra choice of its own ([`Row::other_type`]), so what was
/// typed stays visible; nothing shared grows with the input.
fn type_options(t: &FlowsText, rows: &mut [Row]) -> Vec<TypeOption> {
    let utc: std::sync::Arc<str> = "UTC".into();
    let known = [
        (DataType::Utf8, t.type_utf8),
        (DataType::Int64, t.type_int64),
        (DataType::Int32, t.type_int32),
        (DataType::Float64, t.type_float64),
        (DataType::Decimal128(18, 2), t.type_decimal),
        (DataType::Boolean, t.type_bool),
        (DataType::Date32, t.type_date),
        (DataType::Timestamp(TimeUnit::Microsecond, None), t.type_ts),
        (
            DataType::Timestamp(TimeUnit::Microsecond, Some(utc)),
            t.type_ts_utc,
        ),
    ];
    let options: Vec<TypeOption> = known
        .iter()
        .map(|(ty, what)| {
            let value = ty.to_string();
            TypeOption {
                label: format!("{what} — {value}"),
                value,
            }
        })
        .collect();
    for r in rows.iter_mut() {
        r.other_type = (!r.data_type.is_empty() && !options.iter().any(|o| o.value == r.data_type))
            .then(|| TypeOption {
                label: match parse_data_type(r.data_type.trim()) {
                    Ok(_) => r.data_type.clone(),
                    Err(_) => format!("{} — {}", r.data_type, t.bad_type),
                },
                value: r.data_type.clone(),
            });
    }
    options
}

/// One row of the attribute table, as typed.
#[derive(Debug, Clone, Default)]
struct Row {
    name: String,
    data_type: String,
    description: String,
    subject: String,
    personal: bool,
    required: bool,
    key: bool,
    /// The refusal names this row.
    invalid: bool,
    /// The row's type when it is none of the types offered to every row: shown as an
    /// extra choice of this row only (set by [`type_options`]).
    other_type: Option<TypeOption>,
}

impl Row {
    fn empty() -> Row {
        Row {
            data_type: DataType::Utf8.to_string(),
            ..Row::default()
        }
    }

    fn of(a: &Attribute, key: bool) -> Row {
        Row {
            name: a.name.clone(),
            data_type: a.data_type.to_string(),
            description: a.description.clone(),
            subject: a.subject.clone().unwrap_or_default(),
            personal: a.personal,
            required: !a.nullable,
            key,
            invalid: false,
            other_type: None,
        }
    }

    /// Nothing typed in it (checkboxes alone do not count): the row is ignored.
    fn is_blank(&self) -> bool {
        self.name.trim().is_empty()
            && self.description.trim().is_empty()
            && self.subject.trim().is_empty()
    }
}

/// Fields of the definition forms (registration and schema change). Everything is text,
/// so any input parses; the service judges it.
#[derive(Debug, Default, Deserialize)]
struct DefinitionForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    sla_days: String,
    #[serde(default)]
    provider_systems: Vec<String>,
    #[serde(default)]
    attr_name: Vec<String>,
    #[serde(default)]
    attr_type: Vec<String>,
    #[serde(default)]
    attr_description: Vec<String>,
    #[serde(default)]
    attr_subject: Vec<String>,
    #[serde(default)]
    attr_personal: Vec<String>,
    #[serde(default)]
    attr_required: Vec<String>,
    #[serde(default)]
    key: Vec<String>,
    #[serde(default)]
    reason: String,
}

impl DefinitionForm {
    /// How many attribute rows the form has (checkboxes make none).
    fn row_count(&self) -> usize {
        [
            self.attr_name.len(),
            self.attr_type.len(),
            self.attr_description.len(),
            self.attr_subject.len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// The refusal of a form with more than [`MAX_FORM_ROWS`] rows, if it has so many.
    fn too_many_rows(&self, t: &FlowsText) -> Option<GovError> {
        let n = self.row_count();
        (n > MAX_FORM_ROWS).then(|| {
            invalid(
                "attributes",
                format!(
                    "{}: {n}; {}: {MAX_FORM_ROWS}. {}",
                    t.too_many_rows, t.rows_at_most, t.rows_not_kept
                ),
            )
        })
    }

    /// The definition of dataset `name` of `owner` the form gives, with the attributes of
    /// its `rows` (a row the engine cannot take is marked).
    fn definition(
        &self,
        t: &FlowsText,
        rows: &mut [Row],
        name: String,
        owner: String,
    ) -> Result<DatasetDefinition, GovError> {
        let (attributes, primary_key) = attributes(t, rows)?;
        Ok(DatasetDefinition {
            name,
            owner,
            description: self.description.trim().to_owned(),
            primary_key,
            attributes,
        })
    }

    /// The rows as typed; a checkbox's value is its row's index. Call it only on a form
    /// within [`MAX_FORM_ROWS`].
    fn rows(&self) -> Vec<Row> {
        let n = self.row_count();
        let set = |list: &[String]| -> HashSet<usize> {
            list.iter().filter_map(|v| v.trim().parse().ok()).collect()
        };
        let (personal, required, key) = (
            set(&self.attr_personal),
            set(&self.attr_required),
            set(&self.key),
        );
        let at = |list: &[String], i: usize| list.get(i).cloned().unwrap_or_default();
        (0..n)
            .map(|i| Row {
                name: at(&self.attr_name, i),
                data_type: at(&self.attr_type, i),
                description: at(&self.attr_description, i),
                subject: at(&self.attr_subject, i),
                personal: personal.contains(&i),
                required: required.contains(&i),
                key: key.contains(&i),
                invalid: false,
                other_type: None,
            })
            .collect()
    }
}

/// Attributes and primary key of the rows that are not blank, in row order. A type the
/// engine does not know marks its row.
fn attributes(t: &FlowsText, rows: &mut [Row]) -> Result<(Vec<Attribute>, Vec<String>), GovError> {
    let mut attributes = Vec::new();
    let mut key = Vec::new();
    for (i, r) in rows.iter_mut().enumerate() {
        if r.is_blank() {
            continue;
        }
        // Bounded (length, nesting) before Arrow's recursive parser sees it.
        let Ok(data_type) = parse_data_type(r.data_type.trim()) else {
            r.invalid = true;
            let shown: String = r.data_type.chars().take(64).collect();
            return Err(invalid(
                "attr_type",
                format!("{} {}: `{shown}` {}", t.row, i + 1, t.bad_type),
            ));
        };
        let name = r.name.trim().to_owned();
        let subject = r.subject.trim();
        if r.key {
            key.push(name.clone());
        }
        attributes.push(Attribute {
            name,
            data_type,
            nullable: !r.required,
            description: r.description.trim().to_owned(),
            personal: r.personal,
            subject: (r.personal && !subject.is_empty()).then(|| subject.to_owned()),
        });
    }
    Ok((attributes, key))
}

/// Which fields a refusal names.
#[derive(Debug, Clone, Default)]
struct Invalid {
    name: bool,
    owner: bool,
    sla: bool,
    systems: bool,
    key: bool,
    reason: bool,
}

/// The `` `names` `` a message quotes.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Mark the fields and rows a refusal names.
fn mark(e: &GovError, inv: &mut Invalid, rows: &mut [Row]) {
    match e {
        GovError::Invalid { field, .. } => match field.as_str() {
            "sla_days" => inv.sla = true,
            "provider_systems" => inv.systems = true,
            "name" | "definition.name" => inv.name = true,
            "owner" | "definition.owner" => inv.owner = true,
            "key" | "definition.primary_key" => inv.key = true,
            "reason" => inv.reason = true,
            _ => {}
        },
        GovError::Engine(dagr_engine::Error::InvalidDefinition { reason, .. }) => {
            if reason.starts_with("dataset ") {
                inv.name = true;
            }
            if reason.starts_with("owner") {
                inv.owner = true;
            }
            if reason.contains("primary key") {
                inv.key = true;
            }
            let names = quoted(reason);
            let unnamed = reason.contains("name is empty");
            for r in rows.iter_mut().filter(|r| !r.is_blank()) {
                let name = r.name.trim();
                if names.contains(&name) || (unnamed && name.is_empty()) {
                    r.invalid = true;
                }
            }
        }
        _ => {}
    }
}

/// Rows as typed, with at least two blank rows at the end to add to (as long as the form
/// stays within [`MAX_FORM_ROWS`], so it can be sent again).
fn with_room(mut rows: Vec<Row>) -> Vec<Row> {
    let blank_tail = rows.iter().rev().take_while(|r| r.is_blank()).count();
    for _ in blank_tail..2 {
        if rows.len() >= MAX_FORM_ROWS {
            break;
        }
        rows.push(Row::empty());
    }
    rows
}

/// The rows of a change form: the current attributes and `extra` empty rows.
fn definition_rows(def: &DatasetDefinition, extra: usize) -> Vec<Row> {
    let mut rows: Vec<Row> = def
        .attributes
        .iter()
        .map(|a| Row::of(a, def.primary_key.contains(&a.name)))
        .collect();
    rows.extend(std::iter::repeat_n(Row::empty(), extra));
    rows
}

/// `?rows=N`, within bounds.
fn rows_asked(q: &RowsQuery, default: usize) -> usize {
    q.rows
        .as_deref()
        .and_then(|r| r.trim().parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, MAX_ROWS_ASKED)
}

#[derive(Debug, Default, Deserialize)]
struct RowsQuery {
    rows: Option<String>,
}

/// A provider system offered in a form.
#[derive(Debug, Clone)]
struct SystemChoice {
    id: String,
    name: String,
    checked: bool,
}

/// The provider systems of `organisation` (the caller's own when `None`), those in
/// `checked` ticked.
async fn provider_systems(
    portal: &Portal,
    s: &SignedIn,
    organisation: Option<&str>,
    checked: &[String],
) -> Result<Vec<SystemChoice>, GovError> {
    let all = Page {
        limit: 500,
        after: None,
    };
    let systems = portal
        .app
        .gov
        .systems(&s.principal, organisation, &all)
        .await?;
    let checked: HashSet<&str> = checked.iter().map(|c| c.trim()).collect();
    Ok(systems
        .into_iter()
        .filter(|x| x.kind == SystemKind::Provider)
        .map(|x| SystemChoice {
            checked: checked.contains(x.id.to_string().as_str()),
            id: x.id.to_string(),
            name: x.name,
        })
        .collect())
}

/// `sla_days` and `provider_systems` as the service takes them.
fn settings_input(
    t: &FlowsText,
    sla_days: &str,
    systems: &[String],
) -> Result<(Option<i64>, Vec<i64>), GovError> {
    let sla = match sla_days.trim() {
        "" => None,
        v => Some(
            v.parse::<i64>()
                .map_err(|_| invalid("sla_days", format!("`{v}` {}", t.bad_number)))?,
        ),
    };
    let systems = parse_ids("provider_systems", systems, t.bad_number)?;
    Ok((sla, systems))
}

// ---- GET /flows --------------------------------------------------------------------

/// One dataset in the list of flows.
#[derive(Debug, Clone)]
struct FlowRow {
    name: String,
    owner: String,
    version: String,
    rows: String,
    /// When the current version was made (empty when nothing is loaded).
    made: String,
    last: Option<LoadView>,
}

#[derive(Template)]
#[template(path = "flows.html")]
struct FlowsPage {
    shell: Shell,
    t: &'static FlowsText,
    admin: bool,
    flows: Vec<FlowRow>,
}

async fn flows_page(State(portal): State<Portal>, s: SignedIn) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let engine = &portal.app.engine;
    let gov = &portal.app.gov;
    let admin = s.role() == Role::Admin;
    let mut flows = Vec::new();
    for name in engine.dataset_names() {
        let def = engine
            .definition(&name)
            .map_err(|e| s.fail(GovError::Engine(e)))?;
        let ours = admin || (s.role() == Role::Owner && s.organisation() == Some(&def.owner));
        if !ours {
            continue;
        }
        let snapshot = engine
            .current_opt(&name)
            .map_err(|e| s.fail(GovError::Engine(e)))?;
        let last = gov
            .loads(
                &s.principal,
                &name,
                &Page {
                    limit: 1,
                    after: None,
                },
            )
            .await
            .map_err(|e| s.fail(e))?;
        let (version, rows, made) = current_facts(snapshot.as_deref());
        flows.push(FlowRow {
            version,
            rows,
            made,
            last: last.first().map(|l| LoadView::of(t, l)),
            owner: def.owner.clone(),
            name,
        });
    }
    Ok(render(&FlowsPage {
        shell: s.shell(t.flows_title),
        t,
        admin,
        flows,
    }))
}

// ---- GET/POST /flows/new --------------------------------------------------------------

#[derive(Template)]
#[template(path = "dataset_new.html")]
struct NewPage {
    shell: Shell,
    t: &'static FlowsText,
    refusal: Option<Refusal>,
    inv: Invalid,
    name: String,
    owner: String,
    description: String,
    sla_days: String,
    admin: bool,
    /// The organisations an admin chooses from.
    organisations: Vec<Organisation>,
    /// The caller's organisation (fixed for everyone but an admin).
    own_org: String,
    systems: Vec<SystemChoice>,
    rows: Vec<Row>,
    types: Vec<TypeOption>,
    more_href: Option<String>,
}

/// The registration form with `form`'s values (blank on first view).
async fn new_form(
    portal: &Portal,
    s: &SignedIn,
    form: &DefinitionForm,
    mut rows: Vec<Row>,
    more_href: Option<String>,
    refused: Option<(StatusCode, Refusal, Invalid)>,
) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let admin = s.role() == Role::Admin;
    let organisations = if admin {
        organisations(portal, s).await?
    } else {
        Vec::new()
    };
    let systems = if admin || s.organisation().is_none() {
        Vec::new()
    } else {
        provider_systems(portal, s, None, &form.provider_systems)
            .await
            .map_err(|e| s.fail(e))?
    };
    let (status, refusal, inv) = match refused {
        Some((status, r, inv)) => (status, Some(r), inv),
        None => (StatusCode::OK, None, Invalid::default()),
    };
    let page = NewPage {
        shell: s.shell(t.new_title),
        t,
        refusal,
        inv,
        name: form.name.clone(),
        owner: form.owner.clone(),
        description: form.description.clone(),
        sla_days: form.sla_days.clone(),
        admin,
        organisations,
        own_org: s.organisation().unwrap_or_default().to_owned(),
        systems,
        types: type_options(t, &mut rows),
        rows,
        more_href,
    };
    Ok(render_status(status, &page))
}

async fn new_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<RowsQuery>,
) -> Result<Response, PortalError> {
    let n = rows_asked(&q, NEW_ROWS);
    let more = (n < MAX_ROWS_ASKED).then(|| format!("/flows/new?rows={}", n + NEW_ROWS));
    let rows = vec![Row::empty(); n];
    new_form(&portal, &s, &DefinitionForm::default(), rows, more, None).await
}

async fn register(
    State(portal): State<Portal>,
    Posted { session: s, form }: Posted<DefinitionForm>,
) -> Result<Response, PortalError> {
    // Before any row is read: the rows' type strings go through a recursive parser, which
    // must not work for a caller who may register no dataset at all.
    dagr_admin_api::gate::admin_or_owner(&s.principal).map_err(|e| s.fail(e))?;
    let t = FlowsText::get(s.lang());
    if let Some(e) = form.too_many_rows(t) {
        let (status, r) = refusal(s.shell("").c, &e);
        let rows = vec![Row::empty(); NEW_ROWS];
        let refused = Some((status, r, Invalid::default()));
        return new_form(&portal, &s, &form, rows, None, refused).await;
    }
    let mut rows = form.rows();
    let owner = match form.owner.trim() {
        "" => s.organisation().unwrap_or_default().to_owned(),
        o => o.to_owned(),
    };
    let outcome = async {
        let (sla, systems) = settings_input(t, &form.sla_days, &form.provider_systems)?;
        let definition = form.definition(t, &mut rows, form.name.trim().to_owned(), owner)?;
        portal
            .app
            .gov
            .register_dataset(&s.principal, definition, sla, systems)
            .await
    }
    .await;
    match outcome {
        Ok(meta) => Ok(see_other(&format!(
            "/flows/{}?done=registered",
            encode_component(&meta.name)
        ))),
        Err(e) => {
            let (status, r) = refusal(s.shell("").c, &e);
            let mut inv = Invalid::default();
            mark(&e, &mut inv, &mut rows);
            match &e {
                GovError::Conflict(_) | GovError::Engine(dagr_engine::Error::DatasetExists(_)) => {
                    inv.name = true
                }
                GovError::NotFound(what) if what.starts_with("organisation") => inv.owner = true,
                _ => {}
            }
            new_form(
                &portal,
                &s,
                &form,
                with_room(rows),
                None,
                Some((status, r, inv)),
            )
            .await
        }
    }
}

// ---- GET /flows/{name}, POST /flows/{name}/settings --------------------------------------

#[derive(Debug, Default, Deserialize)]
struct FlowQuery {
    after: Option<String>,
    done: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    sla_days: String,
    #[serde(default)]
    provider_systems: Vec<String>,
}

#[derive(Template)]
#[template(path = "flow.html")]
struct FlowPage {
    shell: Shell,
    t: &'static FlowsText,
    name: String,
    name_href: String,
    owner: String,
    description: String,
    version: String,
    rows: String,
    loaded_at: String,
    primary_key: String,
    attributes: usize,
    sla_current: i64,
    loads: Vec<LoadView>,
    next: Option<String>,
    changes: Vec<ChangeRow>,
    refusal: Option<Refusal>,
    inv: Invalid,
    sla_days: String,
    systems: Vec<SystemChoice>,
}

/// The page of dataset `name`; `settings` is a refused settings form to show again.
async fn flow_view(
    portal: &Portal,
    s: &SignedIn,
    name: &str,
    q: &FlowQuery,
    settings: Option<(SettingsForm, GovError)>,
) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let gov = &portal.app.gov;
    let p = &s.principal;
    let loads = gov
        .loads(p, name, &page_after(q.after.as_deref()))
        .await
        .map_err(|e| s.fail(e))?;
    let (loads, after) = split_next(loads, |l| l.id);
    let meta = gov.dataset(p, name).await.map_err(|e| s.fail(e))?;
    let engine = &portal.app.engine;
    let def = engine
        .definition(name)
        .map_err(|e| s.fail(GovError::Engine(e)))?;
    let snapshot = engine
        .current_opt(name)
        .map_err(|e| s.fail(GovError::Engine(e)))?;
    let recent = Page {
        limit: 10,
        after: None,
    };
    let changes = gov
        .change_requests(p, Some(name), None, &recent)
        .await
        .map_err(|e| s.fail(e))?;
    let next = next_href(&format!("/flows/{}", encode_component(name)), None, after);
    let (status, refusal, inv, sla_days, checked) = match settings {
        Some((form, e)) => {
            let (status, r) = refusal(s.shell("").c, &e);
            let mut inv = Invalid::default();
            mark(&e, &mut inv, &mut []);
            (status, Some(r), inv, form.sla_days, form.provider_systems)
        }
        None => (
            StatusCode::OK,
            None,
            Invalid::default(),
            meta.sla_days.to_string(),
            meta.provider_systems.iter().map(i64::to_string).collect(),
        ),
    };
    let systems = provider_systems(portal, s, Some(&meta.owner), &checked)
        .await
        .map_err(|e| s.fail(e))?;
    let shell = s.shell(name).with_done(
        q.done.as_deref(),
        &[("registered", t.done_registered), ("saved", t.done_saved)],
    );
    let (version, rows, loaded_at) = current_facts(snapshot.as_deref());
    let page = FlowPage {
        shell,
        t,
        name: name.to_owned(),
        name_href: encode_component(name),
        owner: def.owner.clone(),
        description: def.description.clone(),
        version,
        rows,
        loaded_at,
        primary_key: def.primary_key.join(", "),
        attributes: def.attributes.len(),
        sla_current: meta.sla_days,
        loads: loads.iter().map(|l| LoadView::of(t, l)).collect(),
        next,
        changes: changes.iter().map(|c| ChangeRow::of(t, c)).collect(),
        refusal,
        inv,
        sla_days,
        systems,
    };
    Ok(render_status(status, &page))
}

async fn flow_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(name): Path<String>,
    Query(q): Query<FlowQuery>,
) -> Result<Response, PortalError> {
    flow_view(&portal, &s, &name, &q, None).await
}

async fn save_settings(
    State(portal): State<Portal>,
    Path(name): Path<String>,
    Posted { session: s, form }: Posted<SettingsForm>,
) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let outcome = async {
        let (sla, systems) = settings_input(t, &form.sla_days, &form.provider_systems)?;
        portal
            .app
            .gov
            .update_dataset(&s.principal, &name, sla, Some(systems))
            .await
    }
    .await;
    match outcome {
        Ok(_) => Ok(see_other(&format!(
            "/flows/{}?done=saved",
            encode_component(&name)
        ))),
        Err(e) => flow_view(&portal, &s, &name, &FlowQuery::default(), Some((form, e))).await,
    }
}

// ---- GET/POST /datasets/{name}/changes/new ---------------------------------------------

#[derive(Template)]
#[template(path = "change_new.html")]
struct ChangeFormPage {
    shell: Shell,
    t: &'static FlowsText,
    refusal: Option<Refusal>,
    inv: Invalid,
    name: String,
    name_href: String,
    owner: String,
    primary_key: String,
    description: String,
    reason: String,
    rows: Vec<Row>,
    types: Vec<TypeOption>,
    more_href: Option<String>,
}

impl ChangeFormPage {
    /// The change form of dataset `name` with `rows`, the current description and no
    /// refusal.
    fn new(
        s: &SignedIn,
        t: &'static FlowsText,
        name: String,
        def: &DatasetDefinition,
        mut rows: Vec<Row>,
    ) -> ChangeFormPage {
        ChangeFormPage {
            shell: s.shell(format!("{}: {name}", t.change_title)),
            t,
            refusal: None,
            inv: Invalid::default(),
            owner: def.owner.clone(),
            primary_key: def.primary_key.join(", "),
            description: def.description.clone(),
            reason: String::new(),
            types: type_options(t, &mut rows),
            rows,
            more_href: None,
            name_href: encode_component(&name),
            name,
        }
    }
}

/// The current definition of `name` (the service's `NotFound` for an unknown dataset).
async fn current_definition(
    portal: &Portal,
    s: &SignedIn,
    name: &str,
) -> Result<std::sync::Arc<DatasetDefinition>, PortalError> {
    portal
        .app
        .gov
        .dataset(&s.principal, name)
        .await
        .map_err(|e| s.fail(e))?;
    portal
        .app
        .engine
        .definition(name)
        .map_err(|e| s.fail(GovError::Engine(e)))
}

async fn change_form_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(name): Path<String>,
    Query(q): Query<RowsQuery>,
) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let def = current_definition(&portal, &s, &name).await?;
    let extra = rows_asked(&q, EXTRA_ROWS);
    let more = (extra < MAX_ROWS_ASKED).then(|| {
        format!(
            "/datasets/{}/changes/new?rows={}",
            encode_component(&name),
            extra + NEW_ROWS
        )
    });
    let rows = definition_rows(&def, extra);
    Ok(render(&ChangeFormPage {
        more_href: more,
        ..ChangeFormPage::new(&s, t, name, &def, rows)
    }))
}

async fn file_change(
    State(portal): State<Portal>,
    Path(name): Path<String>,
    Posted { session: s, form }: Posted<DefinitionForm>,
) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let too_many = form.too_many_rows(t);
    let def = current_definition(&portal, &s, &name).await?;
    // Before any row is read (see `register`): only an owner of the dataset changes it.
    dagr_admin_api::gate::owner_of(&s.principal, &def.owner, &name).map_err(|e| s.fail(e))?;
    // The form again as it was filled in, with the refusal.
    let refused = |e: &GovError, inv: Invalid, rows: Vec<Row>| {
        let (status, r) = refusal(s.shell("").c, e);
        let page = ChangeFormPage {
            refusal: Some(r),
            inv,
            description: form.description.clone(),
            reason: form.reason.clone(),
            ..ChangeFormPage::new(&s, t, name.clone(), &def, rows)
        };
        Ok(render_status(status, &page))
    };
    if let Some(e) = too_many {
        let rows = definition_rows(&def, EXTRA_ROWS);
        return refused(&e, Invalid::default(), rows);
    }
    let mut rows = form.rows();
    let outcome = async {
        let definition = form.definition(t, &mut rows, def.name.clone(), def.owner.clone())?;
        portal
            .app
            .gov
            .file_change_with_reason(&s.principal, &name, definition, &form.reason)
            .await
    }
    .await;
    match outcome {
        Ok(c) => Ok(see_other(&format!("/changes/{}?done=filed", c.id))),
        Err(e) => {
            let mut inv = Invalid::default();
            mark(&e, &mut inv, &mut rows);
            refused(&e, inv, with_room(rows))
        }
    }
}

// ---- GET /changes ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct ChangesQuery {
    status: Option<String>,
    after: Option<String>,
}

/// A choice of the status filter.
#[derive(Debug, Clone)]
struct StatusOption {
    value: &'static str,
    text: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "changes.html")]
struct ChangesPage {
    shell: Shell,
    t: &'static FlowsText,
    admin: bool,
    statuses: Vec<StatusOption>,
    changes: Vec<ChangeRow>,
    next: Option<String>,
}

async fn changes_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<ChangesQuery>,
) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let gov = &portal.app.gov;
    let p = &s.principal;
    let status = q.status.clone().filter(|v| !v.is_empty());
    let page = page_after(q.after.as_deref());
    let items = gov
        .change_requests(p, None, status.as_deref(), &page)
        .await
        .map_err(|e| s.fail(e))?;
    let (items, after) = split_next(items, |c| c.id);
    let next = next_href(
        "/changes",
        status.as_deref().map(|st| ("status", st)),
        after,
    );
    // Without a filter the pending ones come first (all of them, on the first page), and
    // the pages list the others.
    let mut shown = Vec::new();
    let mut pending_first = false;
    if status.is_none() {
        let most = Page {
            limit: 200,
            after: None,
        };
        let pending = gov
            .change_requests(p, None, Some(ChangeStatus::Pending.as_str()), &most)
            .await
            .map_err(|e| s.fail(e))?;
        if (pending.len() as i64) < most.limit {
            pending_first = true;
            if page.after.is_none() {
                shown.extend(pending);
            }
        }
    }
    shown.extend(
        items
            .into_iter()
            .filter(|c| !(pending_first && c.status == ChangeStatus::Pending)),
    );
    Ok(render(&ChangesPage {
        shell: s.shell(t.changes_title),
        t,
        admin: s.role() == Role::Admin,
        statuses: [
            ChangeStatus::Pending,
            ChangeStatus::Applied,
            ChangeStatus::Accepted,
            ChangeStatus::Rejected,
        ]
        .into_iter()
        .map(|st| StatusOption {
            value: st.as_str(),
            text: change_status(t, st).1,
            selected: status.as_deref() == Some(st.as_str()),
        })
        .collect(),
        changes: shown.iter().map(|c| ChangeRow::of(t, c)).collect(),
        next,
    }))
}

// ---- GET /changes/{id}, POST accept/reject ----------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DecisionForm {
    #[serde(default)]
    reason: String,
}

/// One attribute of a proposed definition.
#[derive(Debug, Clone)]
struct AttributeView {
    name: String,
    data_type: String,
    description: String,
    required: bool,
    key: bool,
    personal: bool,
    subject: String,
}

/// One event of a change request's history.
#[derive(Debug, Clone)]
struct HistoryView {
    at: String,
    action: String,
    from: String,
    to: String,
    actor: String,
    reason: String,
}

impl HistoryView {
    fn of(t: &FlowsText, h: &HistoryEntry) -> HistoryView {
        let status = |s: &Option<String>| {
            s.as_deref()
                .and_then(ChangeStatus::parse)
                .map(|st| change_status(t, st).1.to_owned())
                .or_else(|| s.clone())
                .unwrap_or_default()
        };
        HistoryView {
            at: fmt_time(h.at),
            action: match h.action.as_str() {
                "filed" => t.action_filed.to_owned(),
                "explained" => t.action_explained.to_owned(),
                "accepted" => t.action_accepted.to_owned(),
                "rejected" => t.action_rejected.to_owned(),
                other => other.to_owned(),
            },
            from: status(&h.from_status),
            to: status(&h.to_status),
            actor: h.actor.clone(),
            reason: h.reason.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "change.html")]
struct ChangePage {
    shell: Shell,
    t: &'static FlowsText,
    c: ChangeRow,
    decided_by: String,
    decided_at: String,
    reject_reason: String,
    added: Vec<String>,
    removed: Vec<String>,
    /// (name, from, to).
    retyped: Vec<(String, String, String)>,
    unmarked_personal: Vec<String>,
    affected: Vec<(i64, String, String)>,
    attributes: Vec<AttributeView>,
    history: Vec<HistoryView>,
    can_decide: bool,
    refusal: Option<Refusal>,
    reason: String,
    reason_invalid: bool,
}

/// The id in a path, or the service's kind of "not found".
fn change_id(s: &SignedIn, raw: &str) -> Result<i64, PortalError> {
    raw.parse()
        .map_err(|_| s.fail(GovError::NotFound(format!("change request {raw}"))))
}

/// The page of change request `id`; `refused` is a refused decision to show, with the
/// reason as typed.
async fn change_view(
    portal: &Portal,
    s: &SignedIn,
    id: i64,
    done: Option<&str>,
    refused: Option<(GovError, String)>,
) -> Result<Response, PortalError> {
    let t = FlowsText::get(s.lang());
    let gov = &portal.app.gov;
    let c = gov
        .change_request(&s.principal, id)
        .await
        .map_err(|e| s.fail(e))?;
    let history = gov
        .history(&s.principal, "change_request", id)
        .await
        .map_err(|e| s.fail(e))?;
    let attributes = serde_json::from_value::<DatasetDefinition>(c.definition.clone())
        .map(|d| {
            d.attributes
                .iter()
                .map(|a| AttributeView {
                    name: a.name.clone(),
                    data_type: a.data_type.to_string(),
                    description: a.description.clone(),
                    required: !a.nullable,
                    key: d.primary_key.contains(&a.name),
                    personal: a.personal,
                    subject: a.subject.clone().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let filed = if c.status == ChangeStatus::Pending {
        t.done_filed_pending
    } else {
        t.done_filed_applied
    };
    let shell = s.shell(format!("{} {id}", t.change_no)).with_done(
        done,
        &[
            ("filed", filed),
            ("accepted", t.done_accepted),
            ("rejected", t.done_rejected),
        ],
    );
    let (status, refusal, reason, reason_invalid) = match refused {
        Some((e, reason)) => {
            let (status, r) = refusal(shell.c, &e);
            let field = matches!(&e, GovError::Invalid { field, .. } if field == "reason");
            (status, Some(r), reason, field)
        }
        None => (StatusCode::OK, None, String::new(), false),
    };
    let page = ChangePage {
        t,
        c: ChangeRow::of(t, &c),
        decided_by: c.decided_by.clone().unwrap_or_default(),
        decided_at: c.decided_at.map(fmt_time).unwrap_or_default(),
        reject_reason: c.reason.clone().unwrap_or_default(),
        added: c.changes.added.clone(),
        removed: c.changes.removed.clone(),
        unmarked_personal: c.changes.unmarked_personal.clone(),
        retyped: c
            .changes
            .retyped
            .iter()
            .map(|r| (r.name.clone(), r.from.clone(), r.to.clone()))
            .collect(),
        affected: c
            .affected
            .iter()
            .map(|a| {
                (
                    a.agreement,
                    a.consumer_organisation.clone(),
                    a.attributes.join(", "),
                )
            })
            .collect(),
        attributes,
        history: history.iter().map(|h| HistoryView::of(t, h)).collect(),
        can_decide: s.role() == Role::Admin && c.status == ChangeStatus::Pending,
        refusal,
        reason,
        reason_invalid,
        shell,
    };
    Ok(render_status(status, &page))
}

async fn change_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let id = change_id(&s, &raw)?;
    change_view(&portal, &s, id, q.done.as_deref(), None).await
}

async fn accept(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, .. }: Posted<DecisionForm>,
) -> Result<Response, PortalError> {
    let id = change_id(&s, &raw)?;
    match portal.app.gov.accept_change(&s.principal, id).await {
        Ok(_) => Ok(see_other(&format!("/changes/{id}?done=accepted"))),
        Err(e) => change_view(&portal, &s, id, None, Some((e, String::new()))).await,
    }
}

async fn reject(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<DecisionForm>,
) -> Result<Response, PortalError> {
    let id = change_id(&s, &raw)?;
    match portal
        .app
        .gov
        .reject_change(&s.principal, id, &form.reason)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/changes/{id}?done=rejected"))),
        Err(e) => change_view(&portal, &s, id, None, Some((e, form.reason))).await,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn offered_types_parse_back() {
        let t = FlowsText::get(Lang::En);
        for o in type_options(t, &mut []) {
            let parsed = DataType::from_str(&o.value).unwrap();
            assert_eq!(parsed.to_string(), o.value);
        }
    }

    #[test]
    fn unknown_types_stay_in_their_own_row() {
        let t = FlowsText::get(Lang::En);
        let typed = |ty: &str| Row {
            data_type: ty.into(),
            ..Row::empty()
        };
        let mut rows: Vec<Row> = ["Utf8", "Text", "Int16", "Text", ""]
            .into_iter()
            .map(typed)
            .collect();
        let shared = type_options(t, &mut rows);
        assert_eq!(shared.len(), type_options(t, &mut []).len());
        assert!(rows[0].other_type.is_none() && rows[4].other_type.is_none());
        let other = rows[1].other_type.as_ref().unwrap();
        assert_eq!(other.value, "Text");
        assert!(other.label.contains(t.bad_type));
        assert_eq!(rows[2].other_type.as_ref().unwrap().label, "Int16");
        assert_eq!(rows[3].other_type.as_ref().unwrap().value, "Text");
    }

    #[test]
    fn too_many_rows_are_refused_before_they_are_read() {
        let t = FlowsText::get(Lang::En);
        let form = |n: usize| DefinitionForm {
            attr_type: vec!["x".into(); n],
            ..DefinitionForm::default()
        };
        assert!(form(MAX_FORM_ROWS).too_many_rows(t).is_none());
        let e = form(MAX_FORM_ROWS + 1).too_many_rows(t).unwrap();
        assert!(matches!(&e, GovError::Invalid { field, .. } if field == "attributes"));
        let named = Row {
            name: "a".into(),
            ..Row::empty()
        };
        let full = with_room(vec![named; MAX_FORM_ROWS]);
        assert_eq!(full.len(), MAX_FORM_ROWS, "no room added past the bound");
    }

    #[test]
    fn rows_keep_their_checkboxes_and_skip_blanks() {
        let form = DefinitionForm {
            attr_name: vec!["id".into(), "".into(), "name".into()],
            attr_type: vec!["Int64".into(), "Utf8".into(), "Utf8".into()],
            attr_description: vec!["".into(), "".into(), "Name".into()],
            attr_subject: vec!["".into(), "".into(), "id".into()],
            attr_personal: vec!["2".into()],
            attr_required: vec!["0".into(), "1".into()],
            key: vec!["0".into()],
            ..DefinitionForm::default()
        };
        let mut rows = form.rows();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].key && rows[0].required && !rows[0].personal);
        assert!(rows[1].is_blank());
        let (attrs, key) = attributes(FlowsText::get(Lang::En), &mut rows).unwrap();
        assert_eq!(key, vec!["id".to_owned()]);
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[1].subject.as_deref(), Some("id"));
        assert!(!attrs[0].nullable && attrs[1].nullable);
    }

    #[test]
    fn refusals_mark_the_rows_they_name() {
        let mut rows = vec![
            Row {
                name: "a".into(),
                ..Row::empty()
            },
            Row {
                name: "b".into(),
                ..Row::empty()
            },
        ];
        let e = GovError::Engine(dagr_engine::Error::InvalidDefinition {
            dataset: "x".into(),
            reason: "attribute `b` is defined twice".into(),
        });
        let mut inv = Invalid::default();
        mark(&e, &mut inv, &mut rows);
        assert!(!rows[0].invalid && rows[1].invalid);
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(7_340_032), "7.0 MiB");
    }
}
