//! Seeding the demo governance on top of the demo registers: consumer organisations,
//! provider and consumer systems, portal users, access requests (most approved into
//! agreements, some left pending), API tokens, and `DATA_DIR/demo-credentials.json` with
//! every secret a demo user needs. The MAP module's demo (grantor, staff, applicants,
//! programmes, seeded applications) is seeded last, by [`crate::demo_map`].
//!
//! This module owns the demo's governance *layout* (which organisations, systems, users,
//! requests and agreements exist) and the credentials file. It makes every change through
//! the [`Governance`] service, acting as principals built for the purpose: an admin for the
//! directory, a consumer user to file each request and an owner user to decide it, so the
//! demo obeys the same rules (and leaves the same history) as real use.
//!
//! Seeding is resumable. A start killed half-way calls [`seed_governance`] again on the same
//! store: organisations, systems and users are got or created, a request that already
//! exists (same consumer, dataset and purpose) is not filed again (a pending one meant to be
//! approved is approved now), and since token secrets cannot be recovered, every earlier
//! demo token (label starting with [`TOKEN_LABEL_PREFIX`]) is revoked before new ones are
//! issued. The credentials file is written last, atomically, readable by its owner only.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use dagr_admin_api::Governance;
use dagr_admin_api::governance::{ApprovalInput, GovError, RequestInput};
use dagr_admin_api::model::{
    AccessRequest, Agreement, LoadChannel, LoadMode, LoadOutcome, LoadStatus, Organisation,
    RequestStatus, System, SystemKind, Time, User, UserRole,
};
use dagr_admin_api::store::{ListFilter, NewLoad, Page};
use dagr_engine::arrow::array::{Array, AsArray};
use dagr_engine::arrow::datatypes::DataType;
use dagr_engine::{Access, Principal, Role};
use serde_json::{Value, json};
use tracing::{debug, info};

/// Name of the credentials file in the data directory.
pub const CREDENTIALS_FILE: &str = "demo-credentials.json";

/// Every token the demo issues has a label starting with this; a re-run of the seeding
/// revokes the live ones before issuing new ones.
pub const TOKEN_LABEL_PREFIX: &str = "demo";

/// How long the demo agreements are valid, in days from seeding.
pub const VALIDITY_DAYS: i64 = 730;

/// How many demo citizens get a subject token.
pub const DEMO_SUBJECTS: usize = 3;

/// Full names of the register owners (created with their codes as names when the registers
/// were registered).
const OWNER_NAMES: &[(&str, &str)] = &[
    ("PMLP", "Pilsonības un migrācijas lietu pārvalde"),
    ("UR", "Uzņēmumu reģistrs"),
    ("VZD", "Valsts zemes dienests"),
];

/// The consumer organisations of the demo: code and full name.
const CONSUMERS: &[(&str, &str)] = &[
    ("BANKA", "AS Demo Banka"),
    ("RIGA", "Rīgas valstspilsētas pašvaldība"),
    ("LM", "Labklājības ministrija"),
    ("APDR", "AAS Demo Apdrošināšana"),
    (crate::demo_map::GRANTOR, crate::demo_map::GRANTOR_NAME),
];

/// The provider system of each register owner: owner code, system name, description.
/// An owner of a demo register missing here gets a generic system.
const PROVIDER_SYSTEMS: &[(&str, &str, &str)] = &[
    (
        "PMLP",
        "Iedzīvotāju reģistrs",
        "Pilsonības un migrācijas lietu pārvaldes Iedzīvotāju reģistrs: fizisko personu dati",
    ),
    (
        "UR",
        "Uzņēmumu reģistra informācijas sistēma",
        "Uzņēmumu reģistra informācijas sistēma: komersanti, biedrības un nodibinājumi",
    ),
    (
        "VZD",
        "Kadastra un adrešu informācijas sistēma",
        "Valsts zemes dienesta Valsts adrešu reģistrs un Nekustamā īpašuma valsts kadastrs",
    ),
];

/// The consumer systems: organisation, name, description.
const CONSUMER_SYSTEMS: &[(&str, &str, &str)] = &[
    (
        "BANKA",
        "Klientu izpētes sistēma",
        "Klientu identificēšana un izpēte (KYC/AML)",
    ),
    (
        "BANKA",
        "Kredītu lēmumu sistēma",
        "Kredītspējas un nodrošinājuma izvērtēšana",
    ),
    (
        "RIGA",
        "Pašvaldības pakalpojumu portāls",
        "Rīgas iedzīvotāju e-pakalpojumi",
    ),
    (
        "RIGA",
        "Rīgas Sociālā dienesta informācijas sistēma",
        "Sociālo pakalpojumu lietvedība",
    ),
    (
        crate::demo_tapis::MUNICIPALITY,
        crate::demo_tapis::TAPIS_SYSTEM,
        "Teritorijas attīstības plānošanas dokumentu izstrāde un saskaņošana",
    ),
    (
        "LM",
        "Sociālās palīdzības administrēšanas sistēma",
        "Sociālās palīdzības un valsts sociālo pabalstu administrēšana",
    ),
    (
        "APDR",
        "Polišu pārvaldības sistēma",
        "Apdrošināšanas līgumu noslēgšana un riska novērtēšana",
    ),
    (
        "APDR",
        "Atlīdzību regulēšanas sistēma",
        "Apdrošināšanas atlīdzību lietu izskatīšana",
    ),
    (
        crate::demo_map::GRANTOR,
        crate::demo_map::MAP_SYSTEM,
        "Valsts atbalsta programmu administrēšana: pieteikumi, vērtēšana, līgumi, maksājumi",
    ),
];

/// What the owner does with a demo request.
#[derive(Debug, Clone, Copy)]
enum Decision {
    /// Approve as requested.
    Approve,
    /// Approve only these attributes (a subset of the requested ones), with a note.
    Narrow(&'static [&'static str], &'static str),
    /// Leave it pending.
    Pending,
}

/// One demo access request.
#[derive(Debug, Clone, Copy)]
struct RequestPlan {
    consumer: &'static str,
    dataset: &'static str,
    attributes: &'static [&'static str],
    row_scope: Option<&'static str>,
    purpose: &'static str,
    legal_basis: &'static str,
    /// Names of the consumer's systems that will read.
    systems: &'static [&'static str],
    decision: Decision,
}

const KYC: &str = "Klientu izpētes sistēma";
const CREDIT: &str = "Kredītu lēmumu sistēma";
const RIGA_PORTAL: &str = "Pašvaldības pakalpojumu portāls";
const RIGA_SOCIAL: &str = "Rīgas Sociālā dienesta informācijas sistēma";
const LM_SOCIAL: &str = "Sociālās palīdzības administrēšanas sistēma";
const POLICIES: &str = "Polišu pārvaldības sistēma";
const CLAIMS: &str = "Atlīdzību regulēšanas sistēma";
const MAP: &str = crate::demo_map::MAP_SYSTEM;
const TAPIS: &str = crate::demo_tapis::TAPIS_SYSTEM;
const PLANNING_LAW: &str = "Teritorijas attīstības plānošanas likums, 4. pants; Ministru kabineta \
                            2014. gada 14. oktobra noteikumi Nr. 628";
const AID_LAW: &str = "Komercdarbības atbalsta kontroles likums; Komisijas Regula (ES) 2023/2831";

/// The AML law, the bank's legal basis.
const AML_LAW: &str = "Noziedzīgi iegūtu līdzekļu legalizācijas un terorisma un proliferācijas \
                       finansēšanas novēršanas likums, 11. un 11.¹ pants";

/// The demo requests, in filing order.
const REQUESTS: &[RequestPlan] = &[
    RequestPlan {
        consumer: "BANKA",
        dataset: "persons",
        attributes: &[
            "personal_code",
            "given_name",
            "family_name",
            "birth_date",
            "declared_address_code",
        ],
        row_scope: None,
        purpose: "Klienta identificēšana un izpēte (KYC)",
        legal_basis: AML_LAW,
        systems: &[KYC, CREDIT],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: "BANKA",
        dataset: "addresses",
        attributes: &["address_code", "full_address", "municipality", "postcode"],
        row_scope: None,
        purpose: "Klienta deklarētās dzīvesvietas adreses pārbaude",
        legal_basis: AML_LAW,
        systems: &[KYC, CREDIT],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: "LM",
        dataset: "persons",
        attributes: &[
            "personal_code",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "declared_address_code",
            "municipality",
            "citizenship",
            "phone",
            "email",
        ],
        row_scope: None,
        purpose: "Sociālās palīdzības un valsts sociālo pabalstu tiesību izvērtēšana",
        legal_basis: "Sociālo pakalpojumu un sociālās palīdzības likums, 33. pants; \
                      Valsts sociālo pabalstu likums",
        systems: &[LM_SOCIAL],
        decision: Decision::Narrow(
            &[
                "personal_code",
                "given_name",
                "family_name",
                "birth_date",
                "sex",
                "declared_address_code",
                "municipality",
                "citizenship",
            ],
            "Tālrunis un e-pasts norādītajam mērķim nav nepieciešami (datu minimizēšana)",
        ),
    },
    RequestPlan {
        consumer: "LM",
        dataset: "addresses",
        attributes: &["address_code", "full_address", "municipality", "postcode"],
        row_scope: None,
        purpose: "Pabalsta saņēmēja dzīvesvietas pārbaude",
        legal_basis: "Valsts sociālo pabalstu likums",
        systems: &[LM_SOCIAL],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: "APDR",
        dataset: "companies",
        attributes: &[
            "registration_number",
            "name",
            "legal_form",
            "status",
            "legal_address_code",
            "nace_code",
            "employees",
        ],
        row_scope: None,
        purpose: "Juridisku personu apdrošināšanas līgumu noslēgšana un riska novērtēšana",
        legal_basis: "Apdrošināšanas līguma likums; Apdrošināšanas un pārapdrošināšanas likums",
        systems: &[POLICIES, CLAIMS],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: "RIGA",
        dataset: "persons",
        attributes: &[
            "personal_code",
            "given_name",
            "family_name",
            "birth_date",
            "declared_address_code",
            "municipality",
        ],
        row_scope: Some("municipality = 'Rīga'"),
        purpose: "Pašvaldības pakalpojumu sniegšana Rīgā deklarētajiem iedzīvotājiem",
        legal_basis: "Pašvaldību likums, 4. pants; Iedzīvotāju reģistra likums",
        systems: &[RIGA_PORTAL, RIGA_SOCIAL],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: "BANKA",
        dataset: "real_estate",
        attributes: &[
            "cadastre_number",
            "property_type",
            "area_m2",
            "address_code",
            "owner_code",
            "owner_kind",
            "cadastral_value",
        ],
        row_scope: None,
        purpose: "Hipotekārā kredīta nodrošinājuma novērtēšana",
        legal_basis: "Kredītiestāžu likums; Patērētāju tiesību aizsardzības likums, 8. pants",
        systems: &[CREDIT],
        decision: Decision::Pending,
    },
    RequestPlan {
        consumer: "APDR",
        dataset: "real_estate",
        attributes: &[
            "cadastre_number",
            "property_type",
            "area_m2",
            "address_code",
            "cadastral_value",
        ],
        row_scope: None,
        purpose: "Nekustamā īpašuma apdrošināšanas riska novērtēšana",
        legal_basis: "Apdrošināšanas līguma likums",
        systems: &[POLICIES],
        decision: Decision::Pending,
    },
    RequestPlan {
        consumer: "RIGA",
        dataset: "addresses",
        attributes: &[
            "address_code",
            "full_address",
            "street",
            "house_number",
            "apartment",
            "postcode",
            "latitude",
            "longitude",
            "municipality",
        ],
        row_scope: Some("municipality = 'Rīga'"),
        purpose: "Teritorijas attīstības plānošana un adrešu uzturēšana Rīgā",
        legal_basis: "Teritorijas attīstības plānošanas likums; Pašvaldību likums, 4. pants",
        systems: &[RIGA_PORTAL],
        decision: Decision::Pending,
    },
    RequestPlan {
        consumer: "LM",
        dataset: "companies",
        attributes: &[
            "registration_number",
            "name",
            "status",
            "nace_code",
            "employees",
        ],
        row_scope: None,
        purpose: "Sociālo uzņēmumu statusa uzraudzība",
        legal_basis: "Sociālā uzņēmuma likums",
        systems: &[LM_SOCIAL],
        decision: Decision::Pending,
    },
    // TAPIS: the properties in a planning territory and their owners, who are told when a
    // consultation opens (docs/tapis.md, "Owners from the registers").
    RequestPlan {
        consumer: crate::demo_tapis::MUNICIPALITY,
        dataset: "real_estate",
        attributes: &[
            "cadastre_number",
            "property_type",
            "address_code",
            "owner_code",
            "owner_kind",
            "centroid_lon",
            "centroid_lat",
            "boundary",
        ],
        row_scope: None,
        purpose: "Plānošanas dokumenta teritorijā esošo nekustamo īpašumu un to īpašnieku \
                  noteikšana un informēšana par publisko apspriešanu",
        legal_basis: PLANNING_LAW,
        systems: &[TAPIS],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: crate::demo_tapis::MUNICIPALITY,
        dataset: "addresses",
        attributes: &["address_code", "full_address", "municipality"],
        row_scope: None,
        purpose: "Plānošanas dokumenta teritorijā esošo nekustamo īpašumu adreses",
        legal_basis: PLANNING_LAW,
        systems: &[TAPIS],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: crate::demo_map::GRANTOR,
        dataset: "companies",
        attributes: &[
            "registration_number",
            "name",
            "legal_form",
            "registration_date",
            "status",
            "legal_address_code",
            "nace_code",
            "employees",
        ],
        row_scope: None,
        purpose: "Atbalsta pretendenta datu aizpilde un atbilstības pārbaude",
        legal_basis: AID_LAW,
        systems: &[MAP],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: crate::demo_map::GRANTOR,
        dataset: "officials",
        attributes: &[
            "registration_number",
            "personal_code",
            "role",
            "share",
            "represents",
        ],
        row_scope: None,
        purpose: "Pārstāvības tiesību un vērtētāju interešu konflikta pārbaude",
        legal_basis: AID_LAW,
        systems: &[MAP],
        decision: Decision::Approve,
    },
    RequestPlan {
        consumer: crate::demo_map::GRANTOR,
        dataset: "addresses",
        attributes: &["address_code", "full_address", "municipality", "postcode"],
        row_scope: None,
        purpose: "Atbalsta pretendenta juridiskās adreses pārbaude",
        legal_basis: AID_LAW,
        systems: &[MAP],
        decision: Decision::Approve,
    },
];

/// Record the demo registers' first loads in the load history (channel `local`), so that
/// the portal's flows, dashboard and charts tell the same story as the engine. A dataset
/// whose history already has an entry (a resumed seeding) is left alone.
async fn record_demo_loads(gov: &Governance) -> anyhow::Result<()> {
    let engine = gov.engine()?;
    let store = gov.store();
    for name in engine.dataset_names() {
        let Some(snapshot) = engine.current_opt(&name)? else {
            continue;
        };
        let first = Page {
            limit: 1,
            after: None,
        };
        if !store.loads_of(&name, &first).await?.is_empty() {
            continue;
        }
        let load = store
            .create_load(&NewLoad {
                dataset: name.clone(),
                channel: LoadChannel::Local,
                mode: LoadMode::Snapshot,
                status: LoadStatus::Validating,
                node: "demo".into(),
                created_by: "demo seeding".into(),
            })
            .await?;
        let outcome = LoadOutcome::Committed {
            version: snapshot.version() as i64,
            rows: snapshot.num_rows() as i64,
        };
        store.finish_load(load.id, 0, &outcome).await?;
    }
    Ok(())
}

/// Every item of a list in one page.
fn everything() -> Page {
    Page {
        limit: i64::MAX,
        after: None,
    }
}

fn admin() -> Principal {
    Principal {
        role: Role::Admin,
        organisation: None,
        system: None,
        subject: None,
        user: Some("demo seeding".into()),
        token_id: None,
    }
}

/// A person of `organisation` signed in to the portal as `login`.
fn person(role: Role, organisation: &str, login: &str) -> Principal {
    Principal {
        role,
        organisation: Some(organisation.to_owned()),
        system: None,
        subject: None,
        user: Some(login.to_owned()),
        token_id: None,
    }
}

fn owner_login(org: &str) -> String {
    format!("{}.owner", org.to_ascii_lowercase())
}

fn consumer_login(org: &str) -> String {
    format!("{}.consumer", org.to_ascii_lowercase())
}

/// The deterministic demo password of a portal user.
pub fn demo_password(login: &str) -> String {
    format!("demo-{login}-2026")
}

/// Seed the demo governance and write `DATA_DIR/demo-credentials.json`.
///
/// Runs after the demo registers are loaded and [`Governance::open`] registered them (so
/// their owner organisations exist). Safe to run again on the same store after an
/// interrupted run; see the module docs. Never logs a secret.
pub async fn seed_governance(gov: &Governance, data_dir: &Path) -> anyhow::Result<()> {
    let admin = admin();
    let owners = register_owners();

    // Organisations.
    let mut organisations = Vec::new();
    for code in &owners {
        let mut org = gov
            .organisation(&admin, code)
            .await
            .with_context(|| format!("the demo register owner `{code}`"))?;
        if let Some((_, name)) = OWNER_NAMES.iter().find(|(c, _)| c == code)
            && org.name != *name
        {
            org = gov
                .rename_organisation(&admin, code, name)
                .await
                .with_context(|| format!("naming the demo register owner `{code}`"))?;
        }
        organisations.push(json!({ "code": org.code, "name": org.name, "role": "owner" }));
    }
    for (code, name) in CONSUMERS {
        let org = organisation(gov, &admin, code, name).await?;
        organisations.push(json!({ "code": org.code, "name": org.name, "role": "consumer" }));
    }

    // Portal users.
    let mut users = Vec::new();
    let mut plan: Vec<(String, String, Option<String>, UserRole)> = vec![(
        "admin".into(),
        "DAGR administrators".into(),
        None,
        UserRole::Admin,
    )];
    for code in &owners {
        plan.push((
            owner_login(code),
            format!("Datu pārzinis ({code})"),
            Some(code.clone()),
            UserRole::Owner,
        ));
    }
    for (code, name) in CONSUMERS {
        plan.push((
            consumer_login(code),
            format!("Datu lietotājs ({name})"),
            Some((*code).to_owned()),
            UserRole::Consumer,
        ));
    }
    for (login, name, org, role) in plan {
        let password = demo_password(&login);
        let u = user(gov, &admin, &login, &name, org.as_deref(), role, &password).await?;
        users.push(json!({
            "login": u.login,
            "password": password,
            "organisation": u.organisation,
            "role": u.role.as_str(),
            "name": u.name,
            "id": u.id,
        }));
    }

    // Systems: one provider system per register owner, feeding its demo registers.
    let mut systems: BTreeMap<(String, String), System> = BTreeMap::new();
    for code in &owners {
        let (name, description) = PROVIDER_SYSTEMS
            .iter()
            .find(|(o, _, _)| o == code)
            .map(|(_, n, d)| ((*n).to_owned(), (*d).to_owned()))
            .unwrap_or_else(|| {
                (
                    format!("{code} reģistru sistēma"),
                    format!("{code} reģistri"),
                )
            });
        let s = system(gov, &admin, code, &name, SystemKind::Provider, &description).await?;
        let owner = person(Role::Owner, code, &owner_login(code));
        for def in dagr_engine::demo::definitions() {
            if &def.owner == code {
                gov.update_dataset(&owner, &def.name, None, Some(vec![s.id]))
                    .await
                    .with_context(|| format!("naming the provider system of `{}`", def.name))?;
            }
        }
        systems.insert((code.clone(), name), s);
    }
    for (org, name, description) in CONSUMER_SYSTEMS {
        let s = system(gov, &admin, org, name, SystemKind::Consumer, description).await?;
        systems.insert(((*org).to_owned(), (*name).to_owned()), s);
    }

    // Requests and agreements.
    let valid_to = Time::now().plus_days(VALIDITY_DAYS);
    let mut agreements = Vec::new();
    let mut pending = Vec::new();
    for r in REQUESTS {
        match request(gov, &systems, r, valid_to).await? {
            Outcome::Agreement(a) => agreements.push(json!({
                "id": a.id,
                "request_id": a.request_id,
                "consumer_organisation": a.consumer_organisation,
                "dataset": a.dataset,
                "attributes": a.attributes,
                "row_scope": a.row_scope,
                "systems": a.systems,
                "valid_to": a.valid_to,
            })),
            Outcome::Pending(q) => pending.push(json!({
                "id": q.id,
                "consumer_organisation": q.consumer_organisation,
                "dataset": q.dataset,
                "attributes": q.attributes,
                "due_at": q.due_at,
            })),
            Outcome::Closed => {}
        }
    }

    // Tokens: earlier demo tokens' secrets are lost, so they go before new ones are issued.
    let revoked = revoke_demo_tokens(gov, &admin).await?;
    if revoked > 0 {
        info!(revoked, "revoked the demo tokens of an interrupted seeding");
    }
    let admin_token = gov
        .create_admin_token(None, "demo admin", None)
        .await
        .context("issuing the demo admin token")?;
    let mut by_id: Vec<&System> = systems.values().collect();
    by_id.sort_by_key(|s| s.id);
    let mut system_entries = Vec::new();
    for s in by_id {
        let (org, name) = (&s.organisation, &s.name);
        let t = gov
            .create_system_token(None, s.id, "demo system token", None)
            .await
            .with_context(|| format!("issuing a token for system `{name}` of `{org}`"))?;
        system_entries.push(json!({
            "organisation": org,
            "system": name,
            "system_id": s.id,
            "role": s.kind.as_str(),
            "token": t.secret,
            "token_id": t.token.id,
        }));
    }
    let mut subjects = Vec::new();
    for code in demo_subjects(gov)? {
        let t = gov
            .create_subject_token(None, &code, "demo subject", None)
            .await
            .context("issuing a demo subject token")?;
        subjects.push(json!({
            "personal_code": code,
            "token": t.secret,
            "token_id": t.token.id,
        }));
    }

    let map_system = systems
        .get(&(
            crate::demo_map::GRANTOR.to_owned(),
            crate::demo_map::MAP_SYSTEM.to_owned(),
        ))
        .ok_or_else(|| anyhow!("the demo MAP system is missing"))?
        .id;
    let map = crate::demo_map::seed(gov, &admin, map_system)
        .await
        .context("seeding the MAP demo")?;

    let tapis_system = systems
        .get(&(
            crate::demo_tapis::MUNICIPALITY.to_owned(),
            crate::demo_tapis::TAPIS_SYSTEM.to_owned(),
        ))
        .ok_or_else(|| anyhow!("the demo TAPIS system is missing"))?
        .id;
    let tapis = crate::demo_tapis::seed(gov, &admin, tapis_system)
        .await
        .context("seeding the TAPIS demo")?;

    let credentials = json!({
        "admin": { "token": admin_token.secret, "token_id": admin_token.token.id },
        "map": map,
        "tapis": tapis,
        "systems": system_entries,
        "users": users,
        "subjects": subjects,
        "organisations": organisations,
        "agreements": agreements,
        "pending_requests": pending,
    });
    record_demo_loads(gov).await?;
    let path = write_credentials(data_dir, &credentials).await?;
    info!(
        path = %path.display(),
        organisations = organisations.len(),
        systems = systems.len(),
        agreements = agreements.len(),
        pending_requests = pending.len(),
        "demo governance seeded; demo credentials written"
    );
    Ok(())
}

/// The owner organisations of the demo registers, sorted.
fn register_owners() -> Vec<String> {
    let mut owners: Vec<String> = dagr_engine::demo::definitions()
        .into_iter()
        .map(|d| d.owner)
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

async fn organisation(
    gov: &Governance,
    admin: &Principal,
    code: &str,
    name: &str,
) -> anyhow::Result<Organisation> {
    match gov.create_organisation(admin, code, name).await {
        Ok(o) => {
            debug!(code, "demo organisation created");
            Ok(o)
        }
        Err(GovError::Conflict(_)) => gov
            .store()
            .organisation(code)
            .await?
            .ok_or_else(|| anyhow!("organisation `{code}` exists but cannot be read")),
        Err(e) => Err(e).with_context(|| format!("creating the demo organisation `{code}`")),
    }
}

async fn system(
    gov: &Governance,
    admin: &Principal,
    org: &str,
    name: &str,
    kind: SystemKind,
    description: &str,
) -> anyhow::Result<System> {
    let s = match gov.create_system(admin, org, name, kind, description).await {
        Ok(s) => {
            debug!(org, name, "demo system created");
            s
        }
        Err(GovError::Conflict(_)) => gov
            .store()
            .systems(Some(org), &everything())
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow!("system `{name}` of `{org}` exists but cannot be read"))?,
        Err(e) => {
            return Err(e).with_context(|| format!("creating the demo system `{name}` of `{org}`"));
        }
    };
    anyhow::ensure!(
        s.kind == kind,
        "system `{name}` of `{org}` exists as a {} system, the demo needs a {kind} one",
        s.kind
    );
    Ok(s)
}

pub(crate) async fn user(
    gov: &Governance,
    admin: &Principal,
    login: &str,
    name: &str,
    organisation: Option<&str>,
    role: UserRole,
    password: &str,
) -> anyhow::Result<User> {
    match gov
        .create_user(admin, login, name, organisation, role, password)
        .await
    {
        Ok(u) => {
            debug!(login, "demo user created");
            Ok(u)
        }
        Err(GovError::Conflict(_)) => gov
            .store()
            .users(organisation, &everything())
            .await?
            .into_iter()
            .find(|u| u.login == login)
            .ok_or_else(|| {
                anyhow!("user `{login}` exists, but not of the organisation the demo needs")
            }),
        Err(e) => Err(e).with_context(|| format!("creating the demo user `{login}`")),
    }
}

/// Where a demo request ended up.
enum Outcome {
    Agreement(Agreement),
    Pending(AccessRequest),
    /// Refused or withdrawn by someone since (a re-run leaves it so).
    Closed,
}

/// File the request as the consumer (unless it exists) and decide it as the owner.
async fn request(
    gov: &Governance,
    systems: &BTreeMap<(String, String), System>,
    plan: &RequestPlan,
    valid_to: Time,
) -> anyhow::Result<Outcome> {
    let what = || {
        format!(
            "the demo request of `{}` for `{}`",
            plan.consumer, plan.dataset
        )
    };
    let consumer = person(
        Role::Consumer,
        plan.consumer,
        &consumer_login(plan.consumer),
    );
    let filter = ListFilter {
        consumer: Some(plan.consumer.to_owned()),
        dataset: Some(plan.dataset.to_owned()),
        ..Default::default()
    };
    let existing = gov
        .store()
        .requests(&filter, &everything())
        .await?
        .into_iter()
        .find(|r| r.purpose == plan.purpose);
    let r = match existing {
        Some(r) => r,
        None => {
            let ids = plan
                .systems
                .iter()
                .map(|name| {
                    systems
                        .get(&(plan.consumer.to_owned(), (*name).to_owned()))
                        .map(|s| s.id)
                        .ok_or_else(|| anyhow!("no demo system `{name}` of `{}`", plan.consumer))
                })
                .collect::<anyhow::Result<Vec<i64>>>()?;
            let input = RequestInput {
                dataset: plan.dataset.to_owned(),
                attributes: plan.attributes.iter().map(|a| (*a).to_owned()).collect(),
                row_scope: plan.row_scope.map(str::to_owned),
                purpose: plan.purpose.to_owned(),
                legal_basis: plan.legal_basis.to_owned(),
                systems: ids,
                valid_from: None,
                valid_to,
            };
            let r = gov
                .create_request(&consumer, input)
                .await
                .with_context(|| format!("filing {}", what()))?;
            debug!(
                id = r.id,
                consumer = plan.consumer,
                dataset = plan.dataset,
                "demo request filed"
            );
            r
        }
    };
    match (r.status, plan.decision) {
        (RequestStatus::Approved, _) => {
            let id = r
                .agreement_id
                .ok_or_else(|| anyhow!("{} is approved without an agreement", what()))?;
            let a = gov
                .store()
                .agreement(id)
                .await?
                .ok_or_else(|| anyhow!("agreement {id} of {} is missing", what()))?;
            Ok(Outcome::Agreement(a))
        }
        (RequestStatus::Pending, Decision::Pending) => Ok(Outcome::Pending(r)),
        (RequestStatus::Pending, decision) => {
            let owner = person(
                Role::Owner,
                &r.owner_organisation,
                &owner_login(&r.owner_organisation),
            );
            let input = match decision {
                Decision::Narrow(attributes, note) => ApprovalInput {
                    attributes: Some(attributes.iter().map(|a| (*a).to_owned()).collect()),
                    note: Some(note.to_owned()),
                    ..Default::default()
                },
                _ => ApprovalInput::default(),
            };
            let a = gov
                .approve(&owner, r.id, input)
                .await
                .with_context(|| format!("approving {}", what()))?;
            debug!(
                id = a.id,
                consumer = plan.consumer,
                dataset = plan.dataset,
                "demo agreement made"
            );
            Ok(Outcome::Agreement(a))
        }
        (RequestStatus::Refused | RequestStatus::Withdrawn, _) => Ok(Outcome::Closed),
    }
}

/// Revoke every live demo token; returns how many.
async fn revoke_demo_tokens(gov: &Governance, admin: &Principal) -> anyhow::Result<usize> {
    let mut revoked = 0;
    for t in gov.store().tokens(None, &everything()).await? {
        if t.revoked_at.is_some() || !t.label.starts_with(TOKEN_LABEL_PREFIX) {
            continue;
        }
        match gov
            .revoke_token(admin, t.id, "demo seeding resumed; a new token replaces it")
            .await
        {
            Ok(_) => revoked += 1,
            Err(GovError::Conflict(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("revoking demo token {}", t.id)),
        }
    }
    Ok(revoked)
}

/// Personal codes of [`DEMO_SUBJECTS`] persons of the `persons` register, chosen
/// deterministically among its first rows: the first resident of Rīga (so the municipality's
/// agreement covers them), the first resident elsewhere, then the first rows not chosen yet.
fn demo_subjects(gov: &Governance) -> anyhow::Result<Vec<String>> {
    let batch = gov
        .engine()?
        .view("persons", &Access::Unrestricted)?
        .head(200)?;
    let column = |name: &str| -> anyhow::Result<Vec<Option<String>>> {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| anyhow!("the persons register has no `{name}` column"))?;
        let c = dagr_engine::arrow::compute::cast(c, &DataType::Utf8)?;
        let s = c.as_string::<i32>();
        Ok((0..s.len())
            .map(|i| s.is_valid(i).then(|| s.value(i).to_owned()))
            .collect())
    };
    let codes = column("personal_code")?;
    let municipalities = column("municipality")?;
    let rows: Vec<(String, Option<String>)> = codes
        .into_iter()
        .zip(municipalities)
        .filter_map(|(c, m)| c.map(|c| (c, m)))
        .collect();
    anyhow::ensure!(!rows.is_empty(), "the persons register is empty");
    let riga = rows.iter().position(|(_, m)| m.as_deref() == Some("Rīga"));
    let elsewhere = rows.iter().position(|(_, m)| m.as_deref() != Some("Rīga"));
    let mut picked: Vec<usize> = riga.into_iter().chain(elsewhere).collect();
    for i in 0..rows.len() {
        if picked.len() >= DEMO_SUBJECTS {
            break;
        }
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    Ok(picked.into_iter().map(|i| rows[i].0.clone()).collect())
}

/// Write the credentials atomically (a temporary file renamed over the old one), readable
/// by the owner only; returns the path.
async fn write_credentials(data_dir: &Path, credentials: &Value) -> anyhow::Result<PathBuf> {
    let mut bytes = serde_json::to_vec_pretty(credentials)?;
    bytes.push(b'\n');
    let path = data_dir.join(CREDENTIALS_FILE);
    let target = path.clone();
    tokio::task::spawn_blocking(move || write_private(&target, &bytes))
        .await
        .context("writing the demo credentials")?
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    // A temporary file left by an interrupted write may have other permissions: start anew.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dagr_admin_api::MetaStore;
    use dagr_admin_api::model::AgreementStatus;
    use dagr_engine::{Engine, EngineConfig};

    use super::*;

    async fn open(dir: &Path) -> Governance {
        let engine = Engine::open_dir(&dir.join("snapshots"), EngineConfig::default())
            .await
            .unwrap();
        if engine.dataset_names().is_empty() {
            crate::demo::seed(&engine, dir, 300).await.unwrap();
        }
        let store = MetaStore::open_sqlite(&dir.join("meta.db")).await.unwrap();
        Governance::open(store, Arc::new(engine)).await.unwrap()
    }

    fn read(dir: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(CREDENTIALS_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn plans_are_consistent() {
        let defs = dagr_engine::demo::definitions();
        for r in REQUESTS {
            let def = defs.iter().find(|d| d.name == r.dataset).unwrap();
            assert!(
                r.attributes.iter().all(|a| def.attribute(a).is_some()),
                "{}/{}",
                r.consumer,
                r.dataset
            );
            assert!(CONSUMERS.iter().any(|(c, _)| *c == r.consumer));
            for s in r.systems {
                assert!(
                    CONSUMER_SYSTEMS
                        .iter()
                        .any(|(o, n, _)| *o == r.consumer && n == s)
                );
            }
            if let Decision::Narrow(list, _) = r.decision {
                assert!(list.len() < r.attributes.len());
                assert!(list.iter().all(|a| r.attributes.contains(a)));
            }
        }
        let pending = REQUESTS
            .iter()
            .filter(|r| matches!(r.decision, Decision::Pending))
            .count();
        assert!(pending >= 3);
        for (owner, _, _) in PROVIDER_SYSTEMS {
            assert!(register_owners().iter().any(|o| o == owner));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_run_reuses_everything_and_replaces_the_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let gov = open(dir.path()).await;
        seed_governance(&gov, dir.path()).await.unwrap();
        let first = read(dir.path());
        let mode = std::fs::metadata(dir.path().join(CREDENTIALS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // An interrupted seeding runs again on the same store.
        seed_governance(&gov, dir.path()).await.unwrap();
        let second = read(dir.path());
        for key in ["agreements", "pending_requests", "users", "organisations"] {
            assert_eq!(first[key], second[key], "{key}");
        }
        let ids = |v: &Value| -> Vec<Value> {
            v["systems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["system_id"].clone())
                .collect()
        };
        assert_eq!(ids(&first), ids(&second));
        assert_ne!(first["admin"]["token"], second["admin"]["token"]);
        // Each register's first load is in its history once, however often seeding ran.
        for name in gov.engine().unwrap().dataset_names() {
            let loads = gov.store().loads_of(&name, &everything()).await.unwrap();
            assert_eq!(loads.len(), 1, "{name}");
            assert_eq!(loads[0].channel, LoadChannel::Local);
            assert_eq!(
                (loads[0].version, loads[0].status),
                (Some(1), LoadStatus::Committed)
            );
        }

        let store = gov.store();
        assert_eq!(
            store
                .requests(&ListFilter::default(), &everything())
                .await
                .unwrap()
                .len(),
            REQUESTS.len()
        );
        let agreements = store
            .agreements(&ListFilter::default(), &everything())
            .await
            .unwrap();
        assert!(
            agreements
                .iter()
                .all(|a| a.status == AgreementStatus::Active)
        );
        // Only the second run's tokens are live.
        let live: Vec<i64> = store
            .live_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.token.id)
            .collect();
        let mut issued: Vec<i64> = second["systems"]
            .as_array()
            .unwrap()
            .iter()
            .chain(second["subjects"].as_array().unwrap())
            .chain(
                [
                    "programme_managers",
                    "approvers",
                    "accountants",
                    "evaluators",
                    "applicants",
                ]
                .iter()
                .flat_map(|group| second["map"][*group].as_array().unwrap()),
            )
            .chain([&second["tapis"]["planner"]])
            .map(|t| t["token_id"].as_i64().unwrap())
            .chain([second["admin"]["token_id"].as_i64().unwrap()])
            .collect();
        issued.sort_unstable();
        let mut live = live;
        live.sort_unstable();
        assert_eq!(live, issued);
        assert_eq!(second["subjects"].as_array().unwrap().len(), DEMO_SUBJECTS);
    }
}
