//! The data catalog and the way from it to data: every dataset, one dataset's page, and the
//! access request form.
//!
//! - `GET /catalog?q=TEXT&after=NAME`: every dataset (the listing of `GET /api/v1/datasets`)
//!   with its owner, attributes and their personal-data flag, version, rows and the age of
//!   its last load; searchable.
//! - `GET /datasets/{name}`: the dataset's facts and attributes, the agreements on it the
//!   signed-in organisation is party to, and — no records — the form asking for a sample:
//!   a consumer picks one of its organisation's agreements in force on the dataset; an
//!   owner reads its own dataset.
//! - `POST /datasets/{name}/sample` (CSRF-checked): the same page with up to
//!   [`SAMPLE_ROWS`] records, read through the same masked view as the REST record reads —
//!   a consumer's as one of the chosen agreement's systems, so the grants are those its
//!   systems have, with the agreement's purpose declared; an owner's with
//!   [`PREVIEW_PURPOSE`] — and committed to the usage audit before a row is shown.
//! - `GET/POST /datasets/{name}/request`: the access request form of a consumer;
//!   [`Governance::create_request`] decides, and shows the owner's deadline
//!   ([`Governance::decision_due`]) before submitting.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use chrono::{Datelike, Months, NaiveDate};
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::{get, post};
use dagr_admin_api::governance::{GovError, RequestInput};
use dagr_admin_api::model::{Agreement, AgreementStatus, DatasetMeta, SystemKind, Time};
use dagr_admin_api::store::{ListFilter, Page};
use dagr_admin_api::{AppState, Governance};
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use dagr_engine::audit::MAX_PURPOSE_CHARS;
use dagr_engine::{
    AccessPolicy, AuditContext, Channel, DatasetDefinition, Principal, ReadLog, Role,
};
use serde::Deserialize;

use crate::Portal;
use crate::i18n::texts;
use crate::session::{Posted, SignedIn};
use crate::web::{
    PAGE, PortalError, Shell, encode_component, fmt_end, fmt_time, invalid, message, parse_ids,
    render, render_status, riga, riga_day_start, see_other, status_lead,
};

/// The purpose recorded in the usage audit for an owner's sample of its own dataset.
pub(crate) const PREVIEW_PURPOSE: &str =
    "DAGR portāls: datu kopas priekšskatījums (portal: dataset preview)";
/// Records in a dataset page's sample.
const SAMPLE_ROWS: usize = 10;
/// Agreements listed on a dataset page (and offered to read a sample under).
const AGREEMENTS_SHOWN: i64 = 50;
/// Characters of an agreement's purpose shown in the sample form's choice.
const CHOICE_PURPOSE_CHARS: usize = 120;
/// Longest search text taken, in characters.
const MAX_QUERY_CHARS: usize = 200;

texts! {
    /// Texts of the catalog, dataset and access request pages.
    pub(crate) struct CatalogText {
        catalog_title: "Datu katalogs", "Data catalog";
        catalog_intro: "Visas DAGR datu kopas, to turētāji un atribūti. Atribūti ar atzīmi „personas dati” satur ziņas par fiziskām personām; katra to izmantošana tiek reģistrēta.", "Every dataset of DAGR, its owner and its attributes. Attributes marked “personal” hold data about natural persons; every use of them is logged.";
        search_label: "Meklēt datu kopas", "Search datasets";
        search_hint: "Nosaukums, apraksts, atribūts vai turētājs", "Name, description, attribute or owner";
        search_button: "Meklēt", "Search";
        show_all: "Rādīt visas datu kopas", "Show all datasets";
        caption_all: "Datu kopas", "Datasets";
        caption_found: "Meklēšanas rezultāti:", "Search results for";
        no_results: "Neviena datu kopa neatbilst meklētajam.", "No dataset matches your search.";
        no_datasets: "Katalogā vēl nav datu kopu.", "The catalog has no datasets yet.";
        col_dataset: "Datu kopa", "Dataset";
        col_owner: "Turētājs", "Owner";
        col_description: "Apraksts", "Description";
        col_attributes: "Atribūti", "Attributes";
        col_version: "Versija", "Version";
        col_rows: "Ieraksti", "Rows";
        col_loaded: "Pēdējā ielāde", "Last load";
        personal: "personas dati", "personal";
        quote_open: "„", "“";
        quote_close: "”", "”";
        never_loaded: "nav ielādēta", "not loaded";
        just_now: "tikko", "just now";
        ago_before: "pirms ", "";
        ago_after: "", " ago";
        unit_min: "min", "min";
        unit_h: "h", "h";
        unit_d: "d.", "d";
        open_dataset: "Atvērt datu kopas lapu", "Open the page of dataset";
        fact_owner: "Turētājs", "Owner";
        fact_version: "Pašreizējā versija", "Current version";
        fact_rows: "Ierakstu skaits", "Rows";
        fact_loaded: "Pēdējā ielāde", "Last load";
        fact_age: "Datu vecums", "Age of the data";
        fact_key: "Primārā atslēga", "Primary key";
        fact_sla: "Lēmuma termiņš pieprasījumiem", "Time to decide a request";
        fact_personal: "Personas datu atribūti", "Personal attributes";
        unit_days: "d.", "days";
        attributes_heading: "Atribūti", "Attributes";
        col_name: "Nosaukums", "Name";
        col_type: "Tips", "Type";
        col_personal: "Personas dati", "Personal data";
        col_key: "Atslēga", "Key";
        key_marker: "atslēga", "key";
        agreements_heading_own: "Jūsu organizācijas līgumi par šo datu kopu", "Your organisation's agreements on this dataset";
        agreements_heading_all: "Līgumi par šo datu kopu", "Agreements on this dataset";
        col_agreement: "Līgums", "Agreement";
        col_consumer: "Saņēmējs", "Consumer";
        col_granted: "Piešķirtie atribūti", "Granted attributes";
        col_scope: "Ierakstu tvērums", "Row scope";
        col_valid_to: "Derīgs līdz", "Valid to";
        col_status: "Statuss", "Status";
        all_rows: "visi ieraksti", "all rows";
        no_agreements: "Līgumu nav.", "There are no agreements.";
        status_active: "spēkā", "active";
        status_revoked: "atsaukts", "revoked";
        status_expired: "beidzies", "expired";
        sample_heading: "Datu paraugs", "Sample of the data";
        sample_offer_consumer: "Varat apskatīt pirmos ierakstus (ne vairāk kā 10), ko jūsu organizācijas sistēmas saņem saskaņā ar izvēlēto līgumu: tikai ar to piešķirtos atribūtus un ierakstus.", "You can look at the first records (at most 10) your organisation's systems receive under the agreement you choose: only the attributes and rows it grants.";
        sample_offer_owner: "Varat apskatīt savas organizācijas datu kopas pirmos ierakstus (ne vairāk kā 10) ar visiem atribūtiem.", "You can look at the first records (at most 10) of your organisation's dataset, with every attribute.";
        sample_agreement_label: "Līgums, saskaņā ar kuru lasīt", "Agreement to read under";
        sample_choose: "— izvēlieties līgumu —", "— choose an agreement —";
        sample_notice_consumer: "Datu paraugs ir datu izmantošana tāpat kā jebkura cita: ja tajā ir personas dati, tas tiek reģistrēts datu izmantošanas žurnālā ar izvēlētā līguma mērķi, un personas, kuru ieraksti tiek parādīti, to redz sadaļā „Kas izmantoja manus datus”.", "A sample is a use of the data like any other: if it holds personal data, it is recorded in the usage log under the purpose of the chosen agreement, and the people whose records are shown see it under “Who used my data”.";
        sample_notice_owner: "Datu paraugs ir datu izmantošana tāpat kā jebkura cita: ja tajā ir personas dati, tas tiek reģistrēts datu izmantošanas žurnālā, un personas, kuru ieraksti tiek parādīti, to redz sadaļā „Kas izmantoja manus datus”. Reģistrētais mērķis:", "A sample is a use of the data like any other: if it holds personal data, it is recorded in the usage log, and the people whose records are shown see it under “Who used my data”. The purpose recorded:";
        show_sample: "Rādīt datu paraugu", "Show a sample";
        sample_shown_agreement: "Pirmie ieraksti (ne vairāk kā 10), ko jūsu organizācijas sistēmas saņem saskaņā ar līgumu Nr.", "The first records (at most 10) your organisation's systems receive under agreement no.";
        sample_shown_owner: "Datu kopas pirmie ieraksti (ne vairāk kā 10) ar visiem atribūtiem.", "The first records (at most 10) of the dataset, with every attribute.";
        sample_caption: "Datu paraugs, versija", "Sample of the data, version";
        sample_logged: "Šis datu paraugs ir reģistrēts datu izmantošanas žurnālā ar mērķi:", "This sample is recorded in the usage log with the purpose:";
        sample_empty: "Jums redzamajā tvērumā nav neviena ieraksta.", "No record is within what you may see.";
        nothing_visible: "Jūsu organizācijai nav spēkā esoša līguma par šo datu kopu, tāpēc datu paraugu skatīt nevar.", "Your organisation has no agreement in force on this dataset, so no sample can be shown.";
        nothing_visible_role: "Jūsu lomā datu ieraksti šeit nav redzami: administratori un iedzīvotāji datus lasa tikai saskaņā ar līgumu.", "Your role sees no records here: administrators and citizens read data only under an agreement.";
        agreement_no: "Līgums Nr. ", "Agreement no. ";
        choose_agreement: "izvēlieties līgumu, saskaņā ar kuru lasīt", "choose the agreement to read under";
        agreement_on_other: "ir par citu datu kopu:", "is on another dataset:";
        agreement_not_in_force: "šobrīd nav spēkā", "is not in force now";
        agreement_not_yet: "vēl nav iekļauts piekļuves politikā; mēģiniet vēlreiz pēc brīža", "is not in the access policy yet; try again in a moment";
        not_loaded: "Datu kopai vēl nav ielādētu datu.", "The dataset has no data loaded yet.";
        request_access: "Pieprasīt piekļuvi", "Request access";
        request_more: "Pieprasīt piekļuvi (arī papildu atribūtiem vai ierakstiem)", "Request access (also to more attributes or rows)";
        back_to_catalog: "Atpakaļ uz datu katalogu", "Back to the data catalog";
        back_to_dataset: "Atpakaļ uz datu kopas lapu", "Back to the dataset's page";
        request_title: "Piekļuves pieprasījums", "Access request";
        request_intro: "Norādiet, kādus datus, kādam nolūkam un uz kāda tiesiskā pamata jūsu organizācija vēlas saņemt. Lēmumu pieņem datu turētājs.", "Say which data your organisation wants, for what purpose and on which legal basis. The dataset's owner decides.";
        not_consumer: "Piekļuvi pieprasa datu saņēmēju organizācijas. Jūsu lomā pieprasījumu iesniegt nevar.", "Access is requested by consumer organisations. Your role cannot file a request.";
        attrs_legend: "Atribūti", "Attributes";
        attrs_hint: "Izvēlieties tikai nolūkam nepieciešamos atribūtus (datu minimizēšana).", "Choose only the attributes the purpose needs (data minimisation).";
        select_all: "Atzīmēt visus atribūtus", "Select all attributes";
        row_scope_label: "Ierakstu tvērums (neobligāts)", "Row scope (optional)";
        row_scope_hint: "SQL nosacījums par datu kopas kolonnām, piemēram, municipality = 'Rīga'. Tukšs lauks nozīmē visus ierakstus.", "A SQL condition over the dataset's columns, for example municipality = 'Rīga'. Empty means all rows.";
        purpose_label: "Izmantošanas mērķis", "Purpose of use";
        purpose_hint: "Kāpēc un kādam darbam dati ir vajadzīgi.", "Why, and for which work, the data is needed.";
        legal_label: "Tiesiskais pamats", "Legal basis";
        legal_hint: "Normatīvais akts un pants, piemēram, Pašvaldību likums, 4. pants.", "The law and its article, for example Pašvaldību likums, 4. pants.";
        systems_legend: "Sistēmas, kas saņems datus", "Systems that will receive the data";
        systems_hint: "Jūsu organizācijas datu saņēmēju sistēmas; tikai tās varēs lasīt datus.", "Your organisation's consumer systems; only these will read the data.";
        no_systems: "Jūsu organizācijai nav reģistrētu datu saņēmēju sistēmu.", "Your organisation has no consumer systems.";
        register_system: "Reģistrēt sistēmu", "Register a system";
        valid_from_label: "Derīgs no", "Valid from";
        valid_from_hint: "No šīs dienas sākuma pēc Latvijas laika.", "From the start of that day, Latvian time.";
        valid_to_label: "Derīgs līdz", "Valid to";
        valid_to_hint: "Ieskaitot šo dienu (līdz tās beigām pēc Latvijas laika).", "Including that day (until its end, Latvian time).";
        deadline_label: "Ja iesniegsiet tagad, datu turētājam jāpieņem lēmums līdz", "If you submit now, the owner must decide by";
        deadline_sla: "lēmuma termiņš", "time to decide";
        submit: "Iesniegt pieprasījumu", "Submit the request";
        not_a_date: "nav datums formā GGGG-MM-DD", "is not a date YYYY-MM-DD";
        missing_valid_to: "norādiet pēdējo dienu", "give the last day";
        not_a_system: "nav sistēmas identifikators", "is not a system id";
    }
}

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/catalog", get(catalog))
        .route("/datasets/{name}", get(dataset_page))
        .route("/datasets/{name}/sample", post(show_sample))
        .route(
            "/datasets/{name}/request",
            get(request_form).post(file_request),
        )
}

// ---- shared facts ------------------------------------------------------------------

/// An attribute as the pages list it.
#[derive(Debug, Clone)]
struct AttributeView {
    name: String,
    data_type: String,
    description: String,
    personal: bool,
    key: bool,
}

/// When a dataset was last loaded, for people.
#[derive(Debug, Clone)]
struct Loaded {
    /// RFC 3339 (for `<time datetime>`).
    iso: String,
    /// Latvian local time.
    local: String,
    /// "2 h ago".
    age: String,
}

/// What the catalog and a dataset page show of a dataset.
#[derive(Debug, Clone)]
struct DatasetView {
    name: String,
    href: String,
    owner_code: String,
    owner_name: String,
    description: String,
    attributes: Vec<AttributeView>,
    primary_key: String,
    version: Option<u64>,
    rows: usize,
    loaded: Option<Loaded>,
}

impl DatasetView {
    fn personal_count(&self) -> usize {
        self.attributes.iter().filter(|a| a.personal).count()
    }
}

/// The names of organisations, looked up once each.
#[derive(Default)]
struct OrgNames(BTreeMap<String, String>);

impl OrgNames {
    async fn name(&mut self, gov: &Governance, s: &SignedIn, code: &str) -> String {
        if let Some(n) = self.0.get(code) {
            return n.clone();
        }
        // An owner missing from the store is shown by its code alone.
        let name = gov
            .organisation(&s.principal, code)
            .await
            .map(|o| o.name)
            .unwrap_or_default();
        self.0.insert(code.to_owned(), name.clone());
        name
    }
}

/// A dataset's facts as the caller may see them: the service's (its `NotFound` for an
/// unknown dataset), its definition, and its owner's name.
async fn facts(
    app: &AppState,
    s: &SignedIn,
    name: &str,
) -> Result<(DatasetMeta, Arc<DatasetDefinition>, String), PortalError> {
    let meta = app
        .gov
        .dataset(&s.principal, name)
        .await
        .map_err(|e| s.fail(e))?;
    let def = app.engine.definition(name).map_err(|e| s.fail(e.into()))?;
    let owner_name = OrgNames::default().name(&app.gov, s, &meta.owner).await;
    Ok((meta, def, owner_name))
}

/// The agreements on dataset `name` the caller may see (at most [`AGREEMENTS_SHOWN`]),
/// those in force only when `active`.
async fn agreements_on(
    app: &AppState,
    s: &SignedIn,
    name: &str,
    active: bool,
) -> Result<Vec<Agreement>, PortalError> {
    let filter = ListFilter {
        dataset: Some(name.to_owned()),
        status: active.then(|| AgreementStatus::Active.as_str().to_owned()),
        ..ListFilter::default()
    };
    let page = Page {
        limit: AGREEMENTS_SHOWN,
        after: None,
    };
    app.gov
        .agreements(&s.principal, filter, &page)
        .await
        .map_err(|e| s.fail(e))
}

/// "2 h ago": the age of something done at `then`.
fn age(t: &CatalogText, then: Time, now: Time) -> String {
    let minutes = (now.0 - then.0).max(0) / 60_000;
    let (n, unit) = match minutes {
        0 => return t.just_now.to_owned(),
        1..60 => (minutes, t.unit_min),
        60..2880 => (minutes / 60, t.unit_h),
        _ => (minutes / 1440, t.unit_d),
    };
    format!("{}{n} {unit}{}", t.ago_before, t.ago_after)
}

/// The catalog's view of one dataset (as `GET /api/v1/datasets` describes it).
fn describe(
    app: &AppState,
    t: &CatalogText,
    def: &DatasetDefinition,
    owner_name: String,
    now: Time,
) -> Result<DatasetView, GovError> {
    let snap = app.engine.current_opt(&def.name)?;
    Ok(DatasetView {
        name: def.name.clone(),
        href: format!("/datasets/{}", encode_component(&def.name)),
        owner_code: def.owner.clone(),
        owner_name,
        description: def.description.clone(),
        attributes: def
            .attributes
            .iter()
            .map(|a| AttributeView {
                name: a.name.clone(),
                data_type: a.data_type.to_string(),
                description: a.description.clone(),
                personal: a.personal,
                key: def.primary_key.contains(&a.name),
            })
            .collect(),
        primary_key: def.primary_key.join(", "),
        version: snap.as_ref().map(|s| s.version()),
        rows: snap.as_ref().map_or(0, |s| s.num_rows()),
        loaded: snap.as_ref().map(|s| {
            let at = Time(s.created_at().timestamp_millis());
            Loaded {
                iso: at.to_rfc3339(),
                local: fmt_time(at),
                age: age(t, at, now),
            }
        }),
    })
}

// ---- the catalog -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct CatalogQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    shell: Shell,
    t: &'static CatalogText,
    q: String,
    datasets: Vec<DatasetView>,
    /// Whether the catalog has any dataset at all.
    any: bool,
    next: Option<String>,
}

/// Lower case without Latvian diacritics, so that `riga` finds `Rīga`.
fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ā' => 'a',
            'č' => 'c',
            'ē' => 'e',
            'ģ' => 'g',
            'ī' => 'i',
            'ķ' => 'k',
            'ļ' => 'l',
            'ņ' => 'n',
            'š' => 's',
            'ū' => 'u',
            'ž' => 'z',
            c => c,
        })
        .collect()
}

/// Whether every word of the search is in the dataset's name, description, attributes
/// (names and descriptions) or owner (code and name).
fn matches(d: &DatasetView, words: &[String]) -> bool {
    if words.is_empty() {
        return true;
    }
    let mut text = format!(
        "{} {} {} {}",
        d.name, d.description, d.owner_code, d.owner_name
    );
    for a in &d.attributes {
        text.push(' ');
        text.push_str(&a.name);
        text.push(' ');
        text.push_str(&a.description);
    }
    let text = fold(&text);
    words.iter().all(|w| text.contains(w.as_str()))
}

async fn catalog(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(query): Query<CatalogQuery>,
) -> Result<Response, PortalError> {
    let t = CatalogText::get(s.lang());
    let app = &portal.app;
    let q: String = query.q.trim().chars().take(MAX_QUERY_CHARS).collect();
    let words: Vec<String> = fold(&q).split_whitespace().map(str::to_owned).collect();
    let names = app.engine.dataset_names();
    let now = Time::now();
    let mut orgs = OrgNames::default();
    let mut datasets: Vec<DatasetView> = Vec::new();
    let mut next = None;
    for name in names
        .iter()
        .filter(|n| query.after.is_empty() || n.as_str() > query.after.as_str())
    {
        let def = match app.engine.definition(name) {
            Ok(d) => d,
            // Dropped since the names were read.
            Err(dagr_engine::Error::DatasetNotFound(_)) => continue,
            Err(e) => return Err(s.fail(e.into())),
        };
        let owner_name = orgs.name(&app.gov, &s, &def.owner).await;
        let view = describe(app, t, &def, owner_name, now).map_err(|e| s.fail(e))?;
        if !matches(&view, &words) {
            continue;
        }
        if datasets.len() as i64 == PAGE
            && let Some(last) = datasets.last()
        {
            next = Some(format!(
                "/catalog?q={}&after={}",
                encode_component(&q),
                encode_component(&last.name)
            ));
            break;
        }
        datasets.push(view);
    }
    let page = CatalogPage {
        shell: s.shell(t.catalog_title),
        t,
        q,
        datasets,
        any: !names.is_empty(),
        next,
    };
    Ok(render(&page))
}

// ---- a dataset's page --------------------------------------------------------------

/// An agreement as a dataset page lists it.
#[derive(Debug)]
struct AgreementRow {
    id: i64,
    consumer: String,
    attributes: String,
    row_scope: Option<String>,
    valid_to: String,
    status_class: &'static str,
    status_text: &'static str,
}

/// An agreement in force a consumer may read the sample under, as the form offers it.
#[derive(Debug)]
struct SampleChoice {
    id: i64,
    /// Its id, granted attributes and purpose.
    label: String,
    selected: bool,
}

/// One column of the sample.
#[derive(Debug)]
struct SampleColumn {
    name: String,
    personal: bool,
}

/// A sample read after the visitor asked for it.
#[derive(Debug)]
struct Sample {
    version: u64,
    columns: Vec<SampleColumn>,
    rows: Vec<Vec<String>>,
    /// Whether it carried personal attributes (and so was recorded in the usage log).
    recorded: bool,
    /// The purpose recorded with it.
    purpose: String,
    /// The agreement it was read under (`None`: an owner's own dataset).
    agreement: Option<i64>,
}

/// Why no sample can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoSample {
    /// Nothing loaded yet.
    NotLoaded,
    /// The organisation holds no agreement in force on it (and does not own it).
    NoAgreement,
    /// Admins and citizens read no data here.
    Role,
}

/// A refused request for a sample.
#[derive(Debug)]
struct SampleError {
    lead: &'static str,
    message: String,
    /// Whether the refusal is about the chosen agreement (the field to mark).
    agreement: bool,
}

#[derive(Template)]
#[template(path = "dataset.html")]
struct DatasetPage {
    shell: Shell,
    t: &'static CatalogText,
    d: DatasetView,
    sla_days: i64,
    /// Whether the visitor may file access requests (a consumer not owning it).
    can_request: bool,
    request_href: String,
    /// Whether the agreements are the visitor's organisation's own (a consumer).
    own_agreements: bool,
    /// `None` for a role that sees no agreements (citizens).
    agreements: Option<Vec<AgreementRow>>,
    /// Where the sample form posts.
    sample_action: String,
    /// A consumer's agreements in force on the dataset, to read the sample under.
    choices: Vec<SampleChoice>,
    /// Whether the visitor is an owner of the dataset (reading its own data).
    own_data: bool,
    /// Why no sample can be asked for (then there is no form).
    no_sample: Option<NoSample>,
    /// The sample, after the form was posted.
    sample: Option<Sample>,
    /// Why the form was refused.
    error: Option<SampleError>,
    /// The purpose an owner's sample is recorded with.
    owner_purpose: &'static str,
}

fn status_of(t: &CatalogText, s: AgreementStatus) -> (&'static str, &'static str) {
    match s {
        AgreementStatus::Active => ("active", t.status_active),
        AgreementStatus::Revoked => ("revoked", t.status_revoked),
        AgreementStatus::Expired => ("expired", t.status_expired),
    }
}

/// Cells of a batch as text, row by row (nulls empty).
fn cells(batch: &RecordBatch) -> Result<Vec<Vec<String>>, dagr_engine::Error> {
    let options = FormatOptions::default().with_null("");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect()
        })
        .collect())
}

/// At most `max` characters of `s`, with `…` when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An agreement's purpose as the declared purpose of a read: on one line, at most
/// [`MAX_PURPOSE_CHARS`] characters (an agreement's purpose may be longer).
fn declared_purpose(a: &Agreement) -> String {
    let line = a
        .purpose
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if line.is_empty() {
        return format!("agreement {}", a.id);
    }
    shorten(&line, MAX_PURPOSE_CHARS)
}

/// Who reads a consumer's sample under agreement `a`: the signed-in person as one of the
/// agreement's systems, so the grants are those the organisation's systems have under it —
/// of them the system reading under the fewest agreements on the dataset, so the sample
/// holds no more than that agreement grants where a system reads under it alone. `None`
/// when the access policy holds none of its systems under it.
fn reader_under(app: &AppState, p: &Principal, a: &Agreement) -> Option<Principal> {
    let state = app.gov.policy().state();
    let now = Time::now();
    a.systems
        .iter()
        .filter_map(|system| {
            let reader = Principal {
                system: Some(system.to_string()),
                ..p.clone()
            };
            let on_dataset: Vec<i64> = state
                .agreements_in_force(&reader, now)
                .into_iter()
                .filter(|x| x.dataset == a.dataset)
                .map(|x| x.id)
                .collect();
            on_dataset
                .contains(&a.id)
                .then_some((on_dataset.len(), reader))
        })
        .min_by_key(|(n, _)| *n)
        .map(|(_, reader)| reader)
}

/// Up to [`SAMPLE_ROWS`] records of `name` that `reader` may see, read through its masked
/// view like `GET /api/v1/datasets/{name}/records`, with the access record (declared
/// `purpose`) committed to the usage audit before anything is returned.
async fn sample(
    app: &AppState,
    reader: &Principal,
    name: &str,
    purpose: &str,
    query: String,
) -> Result<Sample, dagr_engine::Error> {
    let access = app.gov.policy().access(reader);
    if !access.can_see(name) {
        return Err(dagr_engine::Error::AccessDenied(format!(
            "no grant on `{name}`"
        )));
    }
    let reads = ReadLog::new();
    let view = app.engine.view(name, &access)?.with_log(reads.clone());
    view.note_projection(None);
    reads.require_purpose(Some(purpose))?;
    let batch = view.head(SAMPLE_ROWS)?;
    let recorded = reads.is_personal();
    let context = Arc::new(AuditContext {
        principal: reader.clone(),
        purpose: Some(purpose.to_owned()),
        channel: Channel::Rest,
        request_id: dagr_engine::audit::request_id(None),
        query,
    });
    reads.commit(&context, &app.audit).await?;
    let columns = batch
        .schema()
        .fields()
        .iter()
        .map(|f| SampleColumn {
            name: f.name().clone(),
            personal: view
                .definition
                .attribute(f.name())
                .is_some_and(|a| a.personal),
        })
        .collect();
    Ok(Sample {
        version: view.snapshot.version(),
        columns,
        rows: cells(&batch)?,
        recorded,
        purpose: purpose.to_owned(),
        agreement: None,
    })
}

/// A dataset's page without a sample: its facts, the agreements on it, and the sample form
/// the visitor may use (`selected`: the agreement to pre-select).
async fn dataset_view(
    app: &AppState,
    s: &SignedIn,
    name: &str,
    selected: Option<i64>,
) -> Result<DatasetPage, PortalError> {
    let t = CatalogText::get(s.lang());
    let p = &s.principal;
    let (meta, def, owner_name) = facts(app, s, name).await?;
    let now = Time::now();
    let d = describe(app, t, &def, owner_name, now).map_err(|e| s.fail(e))?;

    let agreements = if p.role == Role::Subject {
        None
    } else {
        Some(
            agreements_on(app, s, name, false)
                .await?
                .into_iter()
                .map(|a| {
                    let (status_class, status_text) = status_of(t, a.status_at(now));
                    AgreementRow {
                        id: a.id,
                        consumer: a.consumer_organisation,
                        attributes: a.attributes.join(", "),
                        row_scope: a.row_scope,
                        valid_to: fmt_end(a.valid_to),
                        status_class,
                        status_text,
                    }
                })
                .collect(),
        )
    };

    // The agreements in force a consumer may read a sample under, as the service lists
    // them (the form's post checks the chosen one again).
    let mut choices: Vec<SampleChoice> = Vec::new();
    if p.role == Role::Consumer {
        choices = agreements_on(app, s, name, true)
            .await?
            .into_iter()
            .filter(|a| a.in_force(now))
            .map(|a| SampleChoice {
                id: a.id,
                label: format!(
                    "{}{}: {} — {}",
                    t.agreement_no,
                    a.id,
                    a.attributes.join(", "),
                    shorten(&a.purpose, CHOICE_PURPOSE_CHARS)
                ),
                selected: selected == Some(a.id),
            })
            .collect();
        if let [only] = choices.as_mut_slice() {
            only.selected = true;
        }
    }
    let own_data = p.role == Role::Owner && s.organisation() == Some(meta.owner.as_str());
    let no_sample = if d.version.is_none() {
        Some(NoSample::NotLoaded)
    } else if matches!(p.role, Role::Admin | Role::Subject) {
        Some(NoSample::Role)
    } else if !own_data && choices.is_empty() {
        Some(NoSample::NoAgreement)
    } else {
        None
    };

    Ok(DatasetPage {
        shell: s.shell(d.name.clone()),
        t,
        can_request: p.role == Role::Consumer && s.organisation() != Some(&meta.owner),
        request_href: format!("{}/request", d.href),
        sample_action: format!("{}/sample", d.href),
        own_agreements: p.role == Role::Consumer,
        d,
        sla_days: meta.sla_days,
        agreements,
        choices,
        own_data,
        no_sample,
        sample: None,
        error: None,
        owner_purpose: PREVIEW_PURPOSE,
    })
}

async fn dataset_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(name): Path<String>,
) -> Result<Response, PortalError> {
    let page = dataset_view(&portal.app, &s, &name, None).await?;
    Ok(render(&page))
}

/// The sample form: which agreement to read under (consumers).
#[derive(Debug, Default, Deserialize)]
struct SampleForm {
    #[serde(default)]
    agreement: String,
}

/// What to read the sample as: the reader, the declared purpose, and the agreement.
struct SampleRead {
    reader: Principal,
    purpose: String,
    agreement: Option<i64>,
}

/// Whom and why a sample asked for with `form` is read as, the service deciding which
/// agreements the visitor's organisation holds.
async fn sample_read(
    app: &AppState,
    s: &SignedIn,
    page: &DatasetPage,
    form: &SampleForm,
) -> Result<SampleRead, GovError> {
    let t = page.t;
    let p = &s.principal;
    let name = &page.d.name;
    if page.own_data {
        return Ok(SampleRead {
            reader: p.clone(),
            purpose: PREVIEW_PURPOSE.to_owned(),
            agreement: None,
        });
    }
    if p.role != Role::Consumer {
        return Err(GovError::Forbidden(
            if matches!(p.role, Role::Admin | Role::Subject) {
                t.nothing_visible_role
            } else {
                t.nothing_visible
            }
            .to_owned(),
        ));
    }
    let id: i64 = form
        .agreement
        .trim()
        .parse()
        .map_err(|_| invalid("agreement", t.choose_agreement.to_owned()))?;
    let a = app.gov.agreement(p, id).await?;
    if a.dataset != *name {
        return Err(invalid(
            "agreement",
            format!(
                "{}{id} {} `{}`",
                t.agreement_no, t.agreement_on_other, a.dataset
            ),
        ));
    }
    if !a.in_force(Time::now()) {
        return Err(invalid(
            "agreement",
            format!("{}{id} {}", t.agreement_no, t.agreement_not_in_force),
        ));
    }
    let reader = reader_under(app, p, &a).ok_or_else(|| {
        GovError::Conflict(format!("{}{id} {}", t.agreement_no, t.agreement_not_yet))
    })?;
    Ok(SampleRead {
        reader,
        purpose: declared_purpose(&a),
        agreement: Some(a.id),
    })
}

async fn show_sample(
    State(portal): State<Portal>,
    Path(name): Path<String>,
    posted: Posted<SampleForm>,
) -> Result<Response, PortalError> {
    let Posted { session: s, form } = posted;
    let app = &portal.app;
    let chosen = form.agreement.trim().parse().ok();
    let mut page = dataset_view(app, &s, &name, chosen).await?;
    let read = match page.no_sample {
        Some(NoSample::NotLoaded) => Err(GovError::Conflict(page.t.not_loaded.to_owned())),
        _ => sample_read(app, &s, &page, &form).await,
    };
    let refused = match read {
        Ok(read) => {
            let query = match read.agreement {
                Some(id) => format!(
                    "portal: POST /datasets/{name}/sample (sample of {SAMPLE_ROWS}, agreement {id})"
                ),
                None => format!("portal: POST /datasets/{name}/sample (sample of {SAMPLE_ROWS})"),
            };
            match sample(app, &read.reader, &name, &read.purpose, query).await {
                Ok(mut sample) => {
                    sample.agreement = read.agreement;
                    page.sample = Some(sample);
                    return Ok(render(&page));
                }
                Err(dagr_engine::Error::AuditUnavailable(detail)) => {
                    tracing::error!(dataset = %name, error = %detail, "portal: a sample could not be recorded; no rows shown");
                    return Err(s.shell("").unavailable());
                }
                Err(dagr_engine::Error::AccessDenied(_)) => {
                    GovError::Conflict(page.t.nothing_visible.to_owned())
                }
                Err(e) => return Err(s.fail(e.into())),
            }
        }
        Err(e @ GovError::Store(_)) => return Err(s.fail(e)),
        Err(e) => e,
    };
    let (status, lead) = status_lead(page.shell.c, &refused);
    page.error = Some(SampleError {
        lead,
        message: message(&refused),
        agreement: matches!(&refused, GovError::NotFound(_))
            || matches!(&refused, GovError::Invalid { field, .. } if field == "agreement"),
    });
    Ok(render_status(status, &page))
}

// ---- the access request form -------------------------------------------------------

/// The fields of the access request form, as typed.
#[derive(Debug, Default, Deserialize)]
struct RequestForm {
    #[serde(default)]
    attributes: Vec<String>,
    #[serde(default)]
    row_scope: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    legal_basis: String,
    #[serde(default)]
    systems: Vec<String>,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_to: String,
}

/// One checkbox of the form.
#[derive(Debug)]
struct Choice {
    value: String,
    label: String,
    hint: String,
    personal: bool,
    checked: bool,
}

#[derive(Template)]
#[template(path = "request_new.html")]
struct RequestPage {
    shell: Shell,
    t: &'static CatalogText,
    dataset: String,
    dataset_href: String,
    action: String,
    owner_code: String,
    owner_name: String,
    consumer: bool,
    attributes: Vec<Choice>,
    all_checked: bool,
    systems: Vec<Choice>,
    row_scope: String,
    purpose: String,
    legal_basis: String,
    valid_from: String,
    valid_to: String,
    today: String,
    deadline: String,
    sla_days: i64,
    error_lead: String,
    error_detail: String,
    /// The field the service named as wrong (empty: none).
    invalid: String,
}

/// What the form needs besides the input: the dataset and the consumer's systems.
struct RequestContext {
    meta: DatasetMeta,
    def: Arc<DatasetDefinition>,
    owner_name: String,
    /// The organisation's consumer systems: id and name.
    systems: Vec<(i64, String)>,
}

impl RequestContext {
    async fn load(app: &AppState, s: &SignedIn, name: &str) -> Result<Self, PortalError> {
        let p = &s.principal;
        let (meta, def, owner_name) = facts(app, s, name).await?;
        let systems = if p.role == Role::Consumer {
            let page = Page {
                limit: 100,
                after: None,
            };
            app.gov
                .systems(p, None, &page)
                .await
                .map_err(|e| s.fail(e))?
                .into_iter()
                .filter(|sys| sys.kind == SystemKind::Consumer)
                .map(|sys| (sys.id, sys.name))
                .collect()
        } else {
            Vec::new()
        };
        Ok(RequestContext {
            meta,
            def,
            owner_name,
            systems,
        })
    }

    /// The form filled in with `f`, and the error `e` (lead and message) if refused.
    fn page(
        &self,
        s: &SignedIn,
        t: &'static CatalogText,
        f: RequestForm,
        e: Option<(&str, &GovError)>,
    ) -> RequestPage {
        let name = self.def.name.clone();
        let dataset_href = format!("/datasets/{}", encode_component(&name));
        let attributes: Vec<Choice> = self
            .def
            .attributes
            .iter()
            .map(|a| Choice {
                value: a.name.clone(),
                label: a.name.clone(),
                hint: a.description.clone(),
                personal: a.personal,
                checked: f.attributes.contains(&a.name),
            })
            .collect();
        let systems = self
            .systems
            .iter()
            .map(|(id, n)| {
                let value = id.to_string();
                Choice {
                    checked: f.systems.contains(&value),
                    value,
                    label: n.clone(),
                    hint: String::new(),
                    personal: false,
                }
            })
            .collect();
        let (error_lead, error_detail, invalid) = match e {
            Some((lead, e)) => (
                lead.to_owned(),
                message(e),
                match e {
                    GovError::Invalid { field, .. } => field.clone(),
                    _ => String::new(),
                },
            ),
            None => Default::default(),
        };
        RequestPage {
            shell: s.shell(format!("{}: {name}", t.request_title)),
            t,
            action: format!("{dataset_href}/request"),
            dataset_href,
            dataset: name,
            owner_code: self.meta.owner.clone(),
            owner_name: self.owner_name.clone(),
            consumer: s.role() == Role::Consumer,
            all_checked: !attributes.is_empty() && attributes.iter().all(|a| a.checked),
            attributes,
            systems,
            row_scope: f.row_scope,
            purpose: f.purpose,
            legal_basis: f.legal_basis,
            valid_from: f.valid_from,
            valid_to: f.valid_to,
            today: riga(Time::now()).date().to_string(),
            deadline: fmt_time(Governance::decision_due(&self.meta, Time::now())),
            sla_days: self.meta.sla_days,
            error_lead,
            error_detail,
            invalid,
        }
    }
}

fn parse_day(t: &CatalogText, field: &str, text: &str) -> Result<NaiveDate, GovError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| invalid(field, format!("`{text}` {}", t.not_a_date)))
}

/// The service's input from the form: dates are Latvian local days (from the start of
/// `valid_from` to the end of `valid_to`).
fn request_input(
    t: &CatalogText,
    dataset: &str,
    f: &RequestForm,
) -> Result<RequestInput, GovError> {
    let valid_from = match f.valid_from.trim() {
        "" => None,
        d => Some(riga_day_start(parse_day(t, "valid_from", d)?)),
    };
    let valid_to = match f.valid_to.trim() {
        "" => return Err(invalid("valid_to", t.missing_valid_to.to_owned())),
        d => {
            let day = parse_day(t, "valid_to", d)?;
            let next = day
                .succ_opt()
                .ok_or_else(|| invalid("valid_to", format!("`{d}` {}", t.not_a_date)))?;
            riga_day_start(next)
        }
    };
    let systems = parse_ids("systems", &f.systems, t.not_a_system)?;
    let row_scope = Some(f.row_scope.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(RequestInput {
        dataset: dataset.to_owned(),
        attributes: f.attributes.clone(),
        row_scope,
        purpose: f.purpose.clone(),
        legal_basis: f.legal_basis.clone(),
        systems,
        valid_from,
        valid_to,
    })
}

async fn request_form(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(name): Path<String>,
) -> Result<Response, PortalError> {
    let t = CatalogText::get(s.lang());
    let ctx = RequestContext::load(&portal.app, &s, &name).await?;
    let today = riga(Time::now()).date();
    let year_on = today
        .checked_add_months(Months::new(12))
        .unwrap_or_else(|| today.with_day(28).unwrap_or(today));
    let form = RequestForm {
        valid_from: today.to_string(),
        valid_to: year_on.to_string(),
        // A single system is the one that will read.
        systems: match ctx.systems.as_slice() {
            [(id, _)] => vec![id.to_string()],
            _ => Vec::new(),
        },
        ..RequestForm::default()
    };
    Ok(render(&ctx.page(&s, t, form, None)))
}

async fn file_request(
    State(portal): State<Portal>,
    Path(name): Path<String>,
    posted: Posted<RequestForm>,
) -> Result<Response, PortalError> {
    let Posted { session: s, form } = posted;
    let t = CatalogText::get(s.lang());
    let ctx = RequestContext::load(&portal.app, &s, &name).await?;
    let outcome = match request_input(t, &ctx.def.name, &form) {
        Ok(input) => portal.app.gov.create_request(&s.principal, input).await,
        Err(e) => Err(e),
    };
    let e = match outcome {
        Ok(request) => return Ok(see_other(&format!("/requests/{}?done=created", request.id))),
        Err(e @ GovError::Store(_)) => return Err(s.fail(e)),
        Err(e) => e,
    };
    let (status, lead) = status_lead(s.shell("").c, &e);
    Ok(render_status(
        status,
        &ctx.page(&s, t, form, Some((lead, &e))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::utc as at;

    #[test]
    fn a_request_runs_from_the_first_to_the_end_of_the_last_day() {
        let t = CatalogText::get(crate::i18n::Lang::En);
        let f = RequestForm {
            valid_from: "2026-07-01".into(),
            valid_to: "2026-12-31".into(),
            systems: vec!["7".into()],
            ..RequestForm::default()
        };
        let input = request_input(t, "persons", &f).unwrap();
        assert_eq!(input.valid_from, Some(at("2026-06-30 21:00")));
        assert_eq!(input.valid_to, at("2026-12-31 22:00"));
        assert_eq!(input.systems, vec![7]);
        let bad = RequestForm {
            valid_to: "31.12.2026".into(),
            ..RequestForm::default()
        };
        assert!(matches!(
            request_input(t, "persons", &bad),
            Err(GovError::Invalid { field, .. }) if field == "valid_to"
        ));
    }

    #[test]
    fn search_ignores_case_and_latvian_diacritics() {
        assert_eq!(fold("Rīgas ŠĶŪNIS"), "rigas skunis");
        let t = CatalogText::get(crate::i18n::Lang::En);
        assert_eq!(
            age(t, at("2026-01-01 10:00"), at("2026-01-01 12:05")),
            "2 h ago"
        );
        assert_eq!(
            age(t, at("2026-01-01 10:00"), at("2026-01-04 10:00")),
            "3 d ago"
        );
        let lv = CatalogText::get(crate::i18n::Lang::Lv);
        assert_eq!(
            age(lv, at("2026-01-01 10:00"), at("2026-01-01 10:07")),
            "pirms 7 min"
        );
    }
}
