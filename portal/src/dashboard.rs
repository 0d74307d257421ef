//! The admin dashboard, `GET /admin` (admins only): stat cards (registers connected,
//! consumer organisations, agreements in force, pending and overdue requests, loads of the
//! last 24 hours and how many were refused), the connected registers with their current
//! version and freshness, the consumers with their agreements, the overdue requests, the
//! recent loads across datasets, the loads-over-time chart, and the health of the parts
//! DAGR runs on (engine, metadata store, access policy, audit log).
//!
//! Everything comes from the services the REST API uses: the governance service (lists as
//! an admin sees them), the engine (datasets and their current snapshots), the access
//! policy's age and the audit store's chain head.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use dagr_admin_api::Governance;
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::State;
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::{
    AccessRequest, Agreement, Load, LoadStatus, Organisation, System, SystemKind, Time,
};
use dagr_admin_api::store::ListFilter;
use dagr_engine::Principal;

use crate::Portal;
use crate::i18n::texts;
use crate::session::SignedIn;
use crate::usage::{DAY_MS, UsageText, loads_chart, loads_since};
use crate::web::{PortalError, Shell, fmt_time, read_all, render};

texts! {
    /// Texts of the admin dashboard.
    pub(crate) struct DashboardText {
        title: "Pārskats", "Dashboard";
        lead: "DAGR darbība vienuviet: pieslēgtie reģistri, datu saņēmēji, līgumi, pieprasījumi, ielādes un sistēmas veselība.", "DAGR at a glance: connected registers, data consumers, agreements, requests, loads and the health of the system.";
        admins_only: "Pārskats ir pieejams tikai DAGR administratoriem.", "The dashboard is for DAGR administrators only.";
        stats_title: "Galvenie rādītāji", "Key figures";
        stat_registers: "pieslēgti reģistri", "registers connected";
        stat_consumers: "datu saņēmēju organizācijas", "consumer organisations";
        stat_agreements: "spēkā esoši līgumi", "agreements in force";
        stat_pending: "neizlemti pieprasījumi", "pending requests";
        stat_overdue: "nokavēti pieprasījumi", "overdue requests";
        stat_loads: "ielādes pēdējās 24 stundās", "loads in the last 24 hours";
        stat_refused: "noraidītas ielādes pēdējās 24 stundās", "refused loads in the last 24 hours";
        registers_title: "Pieslēgtie reģistri", "Connected registers";
        col_dataset: "Datu kopa", "Dataset";
        col_owner: "Turētājs", "Owner";
        col_version: "Versija", "Version";
        col_rows: "Rindas", "Rows";
        col_last_load: "Pēdējā ielāde", "Last load";
        col_freshness: "Svaigums", "Freshness";
        not_loaded: "nav ielādēts", "not loaded";
        no_loads: "ielāžu nav", "no loads";
        loaded: "ielādēts", "loaded";
        ago_prefix: "pirms ", "";
        ago_suffix: "", " ago";
        unit_min: "min", "min";
        unit_hours: "st.", "h";
        unit_days: "d.", "d";
        no_registers: "Neviens reģistrs vēl nav pieslēgts.", "No register is connected yet.";
        consumers_title: "Datu saņēmēji", "Data consumers";
        col_organisation: "Organizācija", "Organisation";
        col_agreements: "Spēkā esoši līgumi", "Agreements in force";
        col_systems: "Saņēmēja sistēmas", "Consumer systems";
        no_consumers: "Datu saņēmēju vēl nav.", "There are no data consumers yet.";
        overdue_title: "Nokavētie pieprasījumi", "Overdue requests";
        no_overdue: "Neviens pieprasījums nav nokavēts.", "No request is overdue.";
        request_no: "Pieprasījums Nr. ", "Request no. ";
        overdue: "nokavēts", "overdue";
        due: "termiņš bija", "was due";
        for_dataset: "datu kopai", "for";
        by: "no", "by";
        recent_title: "Pēdējās ielādes", "Recent loads";
        col_time: "Sākta", "Started";
        col_status: "Statuss", "Status";
        col_reason: "Iemesls", "Reason";
        load_no: "ielāde Nr. ", "load no. ";
        status_committed: "pieņemta", "committed";
        status_refused: "noraidīta", "refused";
        status_receiving: "saņem datus", "receiving";
        status_validating: "pārbauda", "validating";
        no_recent: "Ielāžu vēl nav.", "No loads yet.";
        health_title: "Sistēmas veselība", "Health";
        h_engine: "Dzinēja datu kopas", "Engine datasets";
        h_engine_loaded: "ar ielādētu versiju", "with a loaded version";
        datasets: "datu kopas", "datasets";
        h_store: "Metadatu glabātuve", "Metadata store";
        reachable: "sasniedzama", "reachable";
        unreachable: "nav sasniedzama", "unreachable";
        h_policy: "Piekļuves politika", "Access policy";
        fresh: "aktuāla", "fresh";
        stale: "novecojusi", "stale";
        policy_age: "atjaunota pirms", "refreshed";
        policy_age_suffix: "", "ago";
        policy_bound: "pieļaujamā robeža", "bound";
        no_bound: "bez robežas", "no bound";
        h_audit: "Audita žurnāls", "Audit log";
        writing: "pieņem ierakstus", "accepting entries";
        not_writing: "nepieņem ierakstus", "not accepting entries";
        audit_unreachable: "nav sasniedzams", "unreachable";
        chain_head: "ķēdes gals: ieraksts Nr.", "chain head: entry no.";
        chain_hash: "jaucējkods", "hash";
        chain_empty: "ierakstu vēl nav", "no entries yet";
        loads_chart_hint: "Pēdējās 30 dienas, pa UTC dienām.", "The last 30 days, by UTC day.";
    }
}

/// Items read per page when counting.
const COUNT_PAGE: i64 = 500;
/// Most items counted of one kind (a bound on the work of one page view).
const MAX_COUNT: usize = 100_000;
/// Overdue requests listed.
const OVERDUE_SHOWN: i64 = 50;
/// Loads listed in the recent history.
const RECENT_LOADS: usize = 20;
/// Days of the loads chart.
const CHART_DAYS: i64 = 30;

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new().route("/admin", get(dashboard))
}

/// One stat card.
struct Stat {
    id: &'static str,
    value: String,
    label: &'static str,
    alert: bool,
}

/// One connected register.
struct Register {
    name: String,
    owner: String,
    owner_name: Option<String>,
    version: Option<u64>,
    rows: Option<usize>,
    last_load: Option<LoadView>,
    loaded_at: Option<String>,
    freshness: Option<String>,
}

/// One consumer organisation.
struct Consumer {
    code: String,
    name: Option<String>,
    agreements: usize,
    systems: usize,
}

/// One overdue request.
struct Overdue {
    id: i64,
    dataset: String,
    consumer: String,
    due: String,
}

/// One load.
struct LoadView {
    id: i64,
    dataset: String,
    time: String,
    status: &'static str,
    status_text: &'static str,
    rows: Option<i64>,
    reason: Option<String>,
}

/// One line of the health list.
struct Health {
    id: &'static str,
    label: &'static str,
    ok: bool,
    state: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    shell: Shell,
    t: &'static DashboardText,
    loads_title: &'static str,
    stats: Vec<Stat>,
    registers: Vec<Register>,
    consumers: Vec<Consumer>,
    overdue: Vec<Overdue>,
    recent: Vec<LoadView>,
    health: Vec<Health>,
    loads_chart: String,
}

/// "3 h ago" in the page's language.
fn ago(t: &DashboardText, ms: i64) -> String {
    let min = ms.max(0) / 60_000;
    let amount = if min < 60 {
        format!("{} {}", min.max(1), t.unit_min)
    } else if min < 48 * 60 {
        format!("{} {}", min / 60, t.unit_hours)
    } else {
        format!("{} {}", min / (24 * 60), t.unit_days)
    };
    format!("{}{amount}{}", t.ago_prefix, t.ago_suffix)
}

fn load_view(t: &DashboardText, l: &Load) -> LoadView {
    let (status, status_text) = match l.status {
        LoadStatus::Committed => ("committed", t.status_committed),
        LoadStatus::Refused => ("refused", t.status_refused),
        LoadStatus::Receiving => ("receiving", t.status_receiving),
        LoadStatus::Validating => ("validating", t.status_validating),
    };
    LoadView {
        id: l.id,
        dataset: l.dataset.clone(),
        time: fmt_time(l.created_at),
        status,
        status_text,
        rows: l.rows,
        reason: (!l.reasons.is_empty()).then(|| l.reasons.join("; ")),
    }
}

/// Every request matching `filter` (pending or overdue), a page at a time.
async fn all_requests(
    gov: &Governance,
    p: &Principal,
    filter: &ListFilter,
    overdue: bool,
) -> Result<Vec<AccessRequest>, GovError> {
    let cursor = |r: &AccessRequest| r.id.to_string();
    let (all, _) = read_all(COUNT_PAGE, MAX_COUNT, cursor, |page| {
        let filter = filter.clone();
        async move { gov.requests(p, filter, overdue, &page).await }
    })
    .await?;
    Ok(all)
}

/// Every agreement in force now, a page at a time.
async fn agreements_in_force(gov: &Governance, p: &Principal) -> Result<Vec<Agreement>, GovError> {
    let now = Time::now();
    let filter = ListFilter {
        status: Some("active".into()),
        ..ListFilter::default()
    };
    let cursor = |a: &Agreement| a.id.to_string();
    let (active, _) = read_all(COUNT_PAGE, MAX_COUNT, cursor, |page| {
        let filter = filter.clone();
        async move { gov.agreements(p, filter, &page).await }
    })
    .await?;
    Ok(active.into_iter().filter(|a| a.valid_from <= now).collect())
}

async fn dashboard(State(portal): State<Portal>, s: SignedIn) -> Result<Response, PortalError> {
    let t = DashboardText::get(s.lang());
    // The rule is the service's: the dashboard is for operators.
    if let Err(e) = dagr_admin_api::Governance::require_admin(&s.principal) {
        let shell = s.shell(t.title);
        let c = shell.c;
        return Err(shell.error(
            StatusCode::FORBIDDEN,
            c.error_forbidden,
            &format!("{} ({})", t.admins_only, crate::web::message(&e)),
        ));
    }
    let (app, p) = (&portal.app, &s.principal);
    let gov = &app.gov;
    let now = Time::now();
    let fail = |e: GovError| s.fail(e);

    // Organisations by code, for names.
    let (organisations, _) = read_all(
        COUNT_PAGE,
        MAX_COUNT,
        |o: &Organisation| o.code.clone(),
        |page| async move { gov.organisations(p, &page).await },
    )
    .await
    .map_err(fail)?;
    let names: BTreeMap<String, String> = organisations
        .into_iter()
        .map(|o| (o.code, o.name))
        .collect();

    // Registers and their loads.
    let metas: Vec<_> = gov
        .store()
        .datasets()
        .await
        .map_err(|e| fail(e.into()))?
        .into_iter()
        .filter(|m| !m.owner.is_empty())
        .collect();
    let dataset_names: Vec<String> = metas.iter().map(|m| m.name.clone()).collect();
    let chart_from = (now.0.div_euclid(DAY_MS) - (CHART_DAYS - 1)) * DAY_MS;
    let mut loads = loads_since(gov, p, &dataset_names, Time(chart_from))
        .await
        .map_err(fail)?;
    loads.sort_by_key(|l| std::cmp::Reverse((l.created_at, l.id)));
    let registers: Vec<Register> = metas
        .iter()
        .map(|m| {
            let snap = app.engine.current_opt(&m.name).ok().flatten();
            let created = snap
                .as_ref()
                .map(|s| Time(s.created_at().timestamp_millis()));
            Register {
                name: m.name.clone(),
                owner: m.owner.clone(),
                owner_name: names.get(&m.owner).cloned(),
                version: snap.as_ref().map(|s| s.version()),
                rows: snap.as_ref().map(|s| s.num_rows()),
                last_load: loads
                    .iter()
                    .find(|l| l.dataset == m.name)
                    .map(|l| load_view(t, l)),
                loaded_at: created.map(fmt_time),
                freshness: created.map(|c| ago(t, now.0 - c.0)),
            }
        })
        .collect();
    let day_ago = Time(now.0 - DAY_MS);
    let loads_24h = loads.iter().filter(|l| l.created_at >= day_ago).count();
    let refused_24h = loads
        .iter()
        .filter(|l| l.created_at >= day_ago && l.status == LoadStatus::Refused)
        .count();
    let recent: Vec<LoadView> = loads
        .iter()
        .take(RECENT_LOADS)
        .map(|l| load_view(t, l))
        .collect();

    // Requests and agreements.
    let pending = all_requests(
        gov,
        p,
        &ListFilter {
            status: Some("pending".into()),
            ..ListFilter::default()
        },
        false,
    )
    .await
    .map_err(fail)?;
    let overdue_all = all_requests(gov, p, &ListFilter::default(), true)
        .await
        .map_err(fail)?;
    let overdue: Vec<Overdue> = overdue_all
        .iter()
        .take(OVERDUE_SHOWN as usize)
        .map(|r| Overdue {
            id: r.id,
            dataset: r.dataset.clone(),
            consumer: r.consumer_organisation.clone(),
            due: fmt_time(r.due_at),
        })
        .collect();
    let agreements = agreements_in_force(gov, p).await.map_err(fail)?;

    // Consumers: organisations with a consumer system or an agreement in force.
    let (systems, _) = read_all(
        COUNT_PAGE,
        MAX_COUNT,
        |sys: &System| sys.id.to_string(),
        |page| async move { gov.systems(p, None, &page).await },
    )
    .await
    .map_err(fail)?;
    let mut consumer_systems: BTreeMap<String, usize> = BTreeMap::new();
    for sys in systems
        .into_iter()
        .filter(|s| s.kind == SystemKind::Consumer)
    {
        *consumer_systems.entry(sys.organisation).or_default() += 1;
    }
    let mut in_force: BTreeMap<String, usize> = BTreeMap::new();
    for a in &agreements {
        *in_force.entry(a.consumer_organisation.clone()).or_default() += 1;
    }
    let codes: BTreeSet<&String> = consumer_systems.keys().chain(in_force.keys()).collect();
    let consumers: Vec<Consumer> = codes
        .into_iter()
        .map(|code| Consumer {
            code: code.clone(),
            name: names.get(code).cloned(),
            agreements: in_force.get(code).copied().unwrap_or(0),
            systems: consumer_systems.get(code).copied().unwrap_or(0),
        })
        .collect();

    let stats = vec![
        Stat {
            id: "stat-registers",
            value: registers.len().to_string(),
            label: t.stat_registers,
            alert: false,
        },
        Stat {
            id: "stat-consumers",
            value: consumers.len().to_string(),
            label: t.stat_consumers,
            alert: false,
        },
        Stat {
            id: "stat-agreements",
            value: agreements.len().to_string(),
            label: t.stat_agreements,
            alert: false,
        },
        Stat {
            id: "stat-pending",
            value: pending.len().to_string(),
            label: t.stat_pending,
            alert: false,
        },
        Stat {
            id: "stat-overdue",
            value: overdue_all.len().to_string(),
            label: t.stat_overdue,
            alert: !overdue_all.is_empty(),
        },
        Stat {
            id: "stat-loads",
            value: loads_24h.to_string(),
            label: t.stat_loads,
            alert: false,
        },
        Stat {
            id: "stat-refused",
            value: refused_24h.to_string(),
            label: t.stat_refused,
            alert: false,
        },
    ];

    let health = health(&portal, t).await;
    let ut = UsageText::get(s.lang());
    let page = DashboardPage {
        shell: s.shell(t.title),
        t,
        loads_title: ut.chart_loads_title,
        stats,
        registers,
        consumers,
        overdue,
        recent,
        health,
        loads_chart: loads_chart(ut, "chart-loads-svg", &loads, chart_from, now.0 + 1),
    };
    Ok(render(&page))
}

/// The health of the parts DAGR runs on: each checked now, none failing the page.
async fn health(portal: &Portal, t: &DashboardText) -> Vec<Health> {
    let app = &portal.app;
    let names = app.engine.dataset_names();
    let loaded = names
        .iter()
        .filter(|n| app.engine.current_opt(n).ok().flatten().is_some())
        .count();
    let store_ok = match app.gov.store().generation().await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: the metadata store is unreachable");
            false
        }
    };
    let (age, bound) = app.gov.policy().age();
    let fresh = bound.is_none_or(|b| age <= b);
    let audit = match app.audit.chain_head().await {
        Ok(h) => {
            let chain = if h.seq == 0 {
                t.chain_empty.to_owned()
            } else {
                format!(
                    "{} {}, {} {}…",
                    t.chain_head,
                    h.seq,
                    t.chain_hash,
                    h.hash.get(..12).unwrap_or(&h.hash)
                )
            };
            Health {
                id: "health-audit",
                label: t.h_audit,
                ok: h.writing,
                state: if h.writing { t.writing } else { t.not_writing }.to_owned(),
                detail: chain,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard: the audit log is unreachable");
            Health {
                id: "health-audit",
                label: t.h_audit,
                ok: false,
                state: t.audit_unreachable.to_owned(),
                detail: String::new(),
            }
        }
    };
    let ms = |d: std::time::Duration| format!("{} ms", d.as_millis());
    vec![
        Health {
            id: "health-engine",
            label: t.h_engine,
            ok: loaded == names.len(),
            state: format!("{} {}", names.len(), t.datasets),
            detail: format!("{loaded} {}", t.h_engine_loaded),
        },
        Health {
            id: "health-store",
            label: t.h_store,
            ok: store_ok,
            state: if store_ok { t.reachable } else { t.unreachable }.to_owned(),
            detail: String::new(),
        },
        Health {
            id: "health-policy",
            label: t.h_policy,
            ok: fresh,
            state: if fresh { t.fresh } else { t.stale }.to_owned(),
            detail: {
                let mut d = format!("{} {}", t.policy_age, ms(age));
                if !t.policy_age_suffix.is_empty() {
                    d.push(' ');
                    d.push_str(t.policy_age_suffix);
                }
                let bound = bound.map_or_else(|| t.no_bound.to_owned(), ms);
                format!("{d}; {} {bound}", t.policy_bound)
            },
        },
        audit,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn ages_read_naturally() {
        let en = DashboardText::get(Lang::En);
        assert_eq!(ago(en, 10_000), "1 min ago");
        assert_eq!(ago(en, 5 * 60_000), "5 min ago");
        assert_eq!(ago(en, 3 * 3_600_000), "3 h ago");
        assert_eq!(ago(en, 3 * DAY_MS), "3 d ago");
        let lv = DashboardText::get(Lang::Lv);
        assert_eq!(ago(lv, 3 * 3_600_000), "pirms 3 st.");
    }
}
