//! The MAP part of the demo: the grantor LIAA (its organisation, MAP system and agreements
//! are in [`crate::demo_governance`]'s plans), its staff with MAP roles and personal tokens,
//! two applicants with subject tokens, two programmes, and [`SEEDED_APPLICATIONS`]
//! applications with a history, for list and filter pages of realistic size.
//!
//! The seeder picks people and companies from the generated registers directly (it is the
//! demo generator, like [`crate::demo_governance`]'s choice of demo subjects), so that the
//! credentials can promise what the acceptance checks need: the first evaluator is an
//! official of the first applicant's first company, no other evaluator is linked to a demo
//! applicant, and no applicant company has prior aid. MAP itself reads the registers only
//! through the engine under LIAA's MAP system's agreements, audited.
//!
//! Resumable like the rest of the demo seeding: staff and roles are got or made again,
//! programmes are found by title, applications are seeded once per programme.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow};
use dagr_admin_api::Governance;
use dagr_admin_api::map::MapStore;
use dagr_admin_api::map::model::{
    AidRegime, Applicant, Condition, Criterion, DE_MINIMIS, EligibilityInput, NewProgramme,
    ReportDue, Status,
};
use dagr_admin_api::map::seed::SeedApplication;
use dagr_admin_api::map::store::StaffRole;
use dagr_admin_api::model::{Time, UserRole};
use dagr_engine::arrow::array::{Array, AsArray, RecordBatch};
use dagr_engine::arrow::datatypes::DataType;
use dagr_engine::{Access, Principal};
use serde_json::{Value, json};
use tracing::info;

/// The grantor organisation's code.
pub const GRANTOR: &str = "LIAA";
/// Its full name.
pub const GRANTOR_NAME: &str = "Latvijas Investīciju un attīstības aģentūra";
/// Its MAP system.
pub const MAP_SYSTEM: &str = "Grantu vadības sistēma (MAP)";
/// Applications seeded into the closed demo programme.
pub const SEEDED_APPLICATIONS: usize = 2000;
/// The open programme the demo's live lifecycle runs in.
pub const OPEN_PROGRAMME: &str = "Mazo uzņēmumu digitalizācijas granti 2026";
/// The closed programme holding the seeded applications.
pub const SEEDED_PROGRAMME: &str = "Eksporta veicināšanas programma 2025";
/// Legal forms MAP's demo programmes fund.
const FORMS: &[&str] = &["SIA", "AS", "IK", "ZS"];

/// Staff: login, MAP role.
const STAFF: &[(&str, &str)] = &[
    ("liaa.pm1", "programme_manager"),
    ("liaa.pm2", "programme_manager"),
    ("liaa.approver1", "approver"),
    ("liaa.approver2", "approver"),
    ("liaa.accountant1", "accountant"),
    ("liaa.eval1", "evaluator"),
    ("liaa.eval2", "evaluator"),
    ("liaa.eval3", "evaluator"),
];

/// One official of a company, as the seeder reads them.
struct Official {
    company: String,
    code: String,
    represents: bool,
}

/// A company as the seeder reads it.
#[derive(Clone)]
struct Company {
    applicant: Applicant,
}

fn strings(batch: &RecordBatch, name: &str) -> anyhow::Result<Vec<Option<String>>> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| anyhow!("the demo query has no `{name}` column"))?;
    let c = dagr_engine::arrow::compute::cast(c, &DataType::Utf8)?;
    let s = c.as_string::<i32>();
    Ok((0..s.len())
        .map(|i| s.is_valid(i).then(|| s.value(i).to_owned()))
        .collect())
}

async fn query(gov: &Governance, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let engine = gov.engine()?;
    Ok(engine
        .query(sql, &Access::Unrestricted)
        .await?
        .collect()
        .await?)
}

/// Every official of an active company of a funded form, and those companies.
async fn registers(gov: &Governance) -> anyhow::Result<(Vec<Official>, BTreeMap<String, Company>)> {
    let forms = FORMS
        .iter()
        .map(|f| format!("'{f}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT o.registration_number, o.personal_code, o.represents, c.name, c.legal_form, c.status \
         FROM officials o JOIN companies c ON c.registration_number = o.registration_number \
         WHERE c.status = 'active' AND c.legal_form IN ({forms}) \
         ORDER BY o.registration_number, o.personal_code"
    );
    let mut officials = Vec::new();
    let mut companies = BTreeMap::new();
    for b in query(gov, &sql).await? {
        let rn = strings(&b, "registration_number")?;
        let code = strings(&b, "personal_code")?;
        let represents = strings(&b, "represents")?;
        let name = strings(&b, "name")?;
        let form = strings(&b, "legal_form")?;
        let status = strings(&b, "status")?;
        for i in 0..b.num_rows() {
            let (Some(rn), Some(code)) = (rn[i].clone(), code[i].clone()) else {
                continue;
            };
            companies.entry(rn.clone()).or_insert_with(|| Company {
                applicant: Applicant {
                    registration_number: rn.clone(),
                    name: name[i].clone().unwrap_or_default(),
                    legal_form: form[i].clone().unwrap_or_default(),
                    status: status[i].clone().unwrap_or_default(),
                },
            });
            officials.push(Official {
                company: rn,
                code,
                represents: represents[i].as_deref() == Some("true"),
            });
        }
    }
    Ok((officials, companies))
}

/// Who the demo's people are.
struct Cast {
    /// (personal code, the companies they represent), two of them.
    applicants: Vec<(String, Vec<String>)>,
    /// Personal codes of the staff, in [`STAFF`] order; the first evaluator's is an
    /// official of the first applicant's first company.
    staff: Vec<String>,
}

async fn cast(gov: &Governance, officials: &[Official]) -> anyhow::Result<Cast> {
    let mut by_company: BTreeMap<&str, Vec<&Official>> = BTreeMap::new();
    for o in officials {
        by_company.entry(&o.company).or_default().push(o);
    }
    let mut represents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for o in officials.iter().filter(|o| o.represents) {
        represents.entry(&o.code).or_default().insert(&o.company);
    }
    let companies_of = |code: &str| -> BTreeSet<&str> {
        officials
            .iter()
            .filter(|o| o.code == code)
            .map(|o| o.company.as_str())
            .collect()
    };
    // The first applicant: represents a company that has another official (the evaluator
    // with a conflict).
    let (a0, c0, e0) = by_company
        .iter()
        .find_map(|(c, os)| {
            let rep = os.iter().find(|o| o.represents)?;
            let other = os.iter().find(|o| o.code != rep.code)?;
            Some((rep.code.as_str(), *c, other.code.as_str()))
        })
        .ok_or_else(|| anyhow!("the demo registers have no company with two officials"))?;
    let e0_companies = companies_of(e0);
    let mut a0_companies: Vec<&str> = vec![c0];
    for c in represents.get(a0).into_iter().flatten() {
        if *c != c0 {
            a0_companies.push(c);
        }
    }
    // The second applicant: someone else, representing companies the first evaluator is no
    // official of.
    let (a1, a1_companies) = represents
        .iter()
        .filter(|(code, _)| **code != a0 && **code != e0)
        .find_map(|(code, cs)| {
            let cs: Vec<&str> = cs
                .iter()
                .copied()
                .filter(|c| !e0_companies.contains(c) && !a0_companies.contains(c))
                .collect();
            (!cs.is_empty()).then_some((*code, cs))
        })
        .ok_or_else(|| anyhow!("the demo registers have no second applicant"))?;
    // Everyone else on the staff: people who are no official of any company.
    let in_officials: BTreeSet<&str> = officials.iter().map(|o| o.code.as_str()).collect();
    let mut free = Vec::new();
    for b in query(
        gov,
        "SELECT personal_code FROM persons ORDER BY personal_code LIMIT 5000",
    )
    .await?
    {
        for code in strings(&b, "personal_code")?.into_iter().flatten() {
            if !in_officials.contains(code.as_str()) && code != a0 && code != a1 {
                free.push(code);
            }
        }
    }
    let mut free = free.into_iter();
    let mut staff = Vec::new();
    for (login, role) in STAFF {
        let code = if *login == "liaa.eval1" {
            debug_assert_eq!(*role, "evaluator");
            e0.to_owned()
        } else {
            free.next().ok_or_else(|| {
                anyhow!("the demo registers have too few people for the MAP staff")
            })?
        };
        staff.push(code);
    }
    Ok(Cast {
        applicants: vec![
            (
                a0.to_owned(),
                a0_companies.into_iter().map(str::to_owned).collect(),
            ),
            (
                a1.to_owned(),
                a1_companies.into_iter().map(str::to_owned).collect(),
            ),
        ],
        staff,
    })
}

fn criteria() -> Vec<Criterion> {
    vec![
        Criterion {
            code: "innovation".into(),
            weight: 40.0,
            min: 0.0,
            max: 10.0,
        },
        Criterion {
            code: "impact".into(),
            weight: 35.0,
            min: 0.0,
            max: 10.0,
        },
        Criterion {
            code: "capacity".into(),
            weight: 25.0,
            min: 0.0,
            max: 10.0,
        },
    ]
}

fn eligibility() -> EligibilityInput {
    EligibilityInput::Many(vec![
        Condition {
            name: "active".into(),
            predicate: "status = 'active'".into(),
        },
        Condition {
            name: "commercial_form".into(),
            predicate: "legal_form IN ('SIA', 'AS', 'IK', 'ZS')".into(),
        },
    ])
}

fn programme(
    title: &str,
    budget: f64,
    max_grant: f64,
    opens: Time,
    closes: Time,
    regime: AidRegime,
) -> NewProgramme {
    NewProgramme {
        title: title.into(),
        budget,
        max_grant,
        co_financing_rate: Some(0.85),
        opens_at: opens.to_rfc3339(),
        closes_at: closes.to_rfc3339(),
        aid_regime: regime,
        eligibility: eligibility(),
        criteria: criteria(),
        evaluators_per_application: 2,
        cost_categories: vec![
            "aprīkojums".into(),
            "programmatūra".into(),
            "konsultācijas".into(),
            "apmācības".into(),
        ],
        approval_levels: None,
        report_schedule: vec![
            ReportDue {
                kind: "interim".into(),
                months_after_contract: 6,
            },
            ReportDue {
                kind: "final".into(),
                months_after_contract: 12,
            },
        ],
    }
}

/// The seeded applications: a deterministic spread over statuses and amounts.
fn seeded(companies: &[&Company], officials: &[Official], now: Time) -> Vec<SeedApplication> {
    const STATUSES: &[(Status, u32)] = &[
        (Status::Draft, 8),
        (Status::Submitted, 10),
        (Status::Returned, 4),
        (Status::Complete, 8),
        (Status::InEvaluation, 10),
        (Status::Evaluated, 10),
        (Status::Approved, 8),
        (Status::Rejected, 16),
        (Status::Contracted, 12),
        (Status::Closed, 8),
        (Status::Withdrawn, 4),
        (Status::Terminated, 2),
    ];
    let total: u32 = STATUSES.iter().map(|(_, w)| w).sum();
    let rep: BTreeMap<&str, &str> = officials
        .iter()
        .filter(|o| o.represents)
        .map(|o| (o.company.as_str(), o.code.as_str()))
        .collect();
    let topics = [
        "Eksporta tirgus izpēte",
        "Dalība starptautiskā izstādē",
        "Produktu sertifikācija ES tirgum",
        "E-komercijas platformas ieviešana",
        "Ražošanas automatizācija",
        "Zīmola attīstība ārvalstīs",
    ];
    let mut out = Vec::with_capacity(SEEDED_APPLICATIONS);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..SEEDED_APPLICATIONS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = companies[i % companies.len()];
        let Some(code) = rep.get(c.applicant.registration_number.as_str()) else {
            continue;
        };
        let mut pick = (x % u64::from(total)) as u32;
        let status = STATUSES
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(Status::Draft, |(s, _)| *s);
        let requested = 500_000 + ((x >> 8) % 195_000) as i64 * 100;
        let granted = matches!(
            status,
            Status::Approved | Status::Contracted | Status::Closed | Status::Terminated
        )
        .then_some(requested / 100 * 90);
        let score = matches!(
            status,
            Status::Evaluated
                | Status::Approved
                | Status::Rejected
                | Status::Contracted
                | Status::Closed
                | Status::Terminated
        )
        .then(|| ((x >> 20) % 1000) as f64 / 100.0);
        out.push(SeedApplication {
            applicant: c.applicant.clone(),
            applicant_code: (*code).to_owned(),
            title: format!("{} ({})", topics[i % topics.len()], c.applicant.name),
            requested,
            status,
            granted,
            score,
            created_at: now.plus_days(-400 + (i as i64 % 360)),
        });
    }
    out
}

/// Seed MAP and return the `map` section of the credentials file. Runs after the demo
/// governance made LIAA, its MAP system and its agreements, and after earlier demo tokens
/// were revoked.
pub async fn seed(gov: &Governance, admin: &Principal, map_system: i64) -> anyhow::Result<Value> {
    let map = MapStore::new(gov.store());
    map.set_grantor(GRANTOR, map_system)
        .await
        .context("registering LIAA as the MAP grantor")?;
    let (officials, companies) = registers(gov).await?;
    let cast = match cast(gov, &officials).await {
        Ok(c) => c,
        Err(e) => {
            // A demo too small for MAP (`--demo-rows` in the tens) still serves the rest.
            tracing::warn!(error = %e, "the demo registers are too small for the MAP demo; MAP has no demo staff");
            return Ok(Value::Null);
        }
    };

    // Staff: users of LIAA with MAP roles and personal tokens.
    let mut by_role: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for ((login, role), code) in STAFF.iter().zip(&cast.staff) {
        let password = crate::demo_governance::demo_password(login);
        crate::demo_governance::user(
            gov,
            admin,
            login,
            &format!("LIAA {}", role.replace('_', " ")),
            Some(GRANTOR),
            UserRole::Consumer,
            &password,
        )
        .await?;
        let role_enum = dagr_admin_api::map::MapRole::parse(role)
            .ok_or_else(|| anyhow!("MAP role `{role}`"))?;
        map.add_staff(&StaffRole {
            login: (*login).to_owned(),
            role: role_enum,
            organisation: GRANTOR.to_owned(),
            personal_code: code.clone(),
        })
        .await
        .with_context(|| format!("giving {login} the MAP role {role}"))?;
        let token = gov
            .create_user_token(None, login, "demo map staff", None)
            .await
            .with_context(|| format!("issuing the demo token of {login}"))?;
        let mut entry = json!({
            "login": login,
            "token": token.secret,
            "token_id": token.token.id,
            "password": password,
        });
        if *role == "evaluator" {
            entry["personal_code"] = json!(code);
        }
        by_role.entry(role).or_default().push(entry);
    }

    // Applicants: subject tokens.
    let mut applicants = Vec::new();
    for (code, cs) in &cast.applicants {
        let t = gov
            .create_subject_token(None, code, "demo map applicant", None)
            .await
            .context("issuing a demo applicant token")?;
        applicants.push(json!({
            "token": t.secret,
            "token_id": t.token.id,
            "personal_code": code,
            "companies": cs,
        }));
    }

    // Programmes.
    let now = Time::now();
    let by = "demo seeding";
    let open = match map.programme_titled(GRANTOR, OPEN_PROGRAMME).await? {
        Some(id) => id,
        None => {
            map.seed_programme(
                GRANTOR,
                &programme(
                    OPEN_PROGRAMME,
                    2_000_000.0,
                    100_000.0,
                    now.plus_days(-30),
                    now.plus_days(365),
                    AidRegime::parse(DE_MINIMIS).expect("a valid code"),
                ),
                by,
            )
            .await?
        }
    };
    let closed = match map.programme_titled(GRANTOR, SEEDED_PROGRAMME).await? {
        Some(id) => id,
        None => {
            map.seed_programme(
                GRANTOR,
                &programme(
                    SEEDED_PROGRAMME,
                    250_000_000.0,
                    200_000.0,
                    now.plus_days(-400),
                    now.plus_days(-30),
                    AidRegime::parse(AidRegime::NONE).expect("a valid code"),
                ),
                by,
            )
            .await?
        }
    };
    if map.application_count(closed).await? == 0 {
        let taken: BTreeSet<&str> = cast
            .applicants
            .iter()
            .flat_map(|(_, cs)| cs.iter().map(String::as_str))
            .collect();
        let pool: Vec<&Company> = companies
            .values()
            .filter(|c| !taken.contains(c.applicant.registration_number.as_str()))
            .collect();
        anyhow::ensure!(
            !pool.is_empty(),
            "the demo registers have no company to seed MAP with"
        );
        let apps = seeded(&pool, &officials, now);
        let n = map.seed_applications(closed, &apps).await?;
        info!(
            applications = n,
            programme = closed,
            "MAP demo applications seeded"
        );
    }
    let list = |role: &str| by_role.get(role).cloned().unwrap_or_default();
    Ok(json!({
        "organisation": GRANTOR,
        "system_id": map_system,
        "programmes": { "open": open, "seeded": closed },
        "programme_managers": list("programme_manager"),
        "approvers": list("approver"),
        "accountants": list("accountant"),
        "evaluators": list("evaluator"),
        "applicants": applicants,
    }))
}
