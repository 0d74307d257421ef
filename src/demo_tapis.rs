//! The TAPIS part of the demo: Riga's planning system (its system is in
//! [`crate::demo_governance`]'s plans), a planner with a password and a personal token, the
//! institutions documents are coordinated with (e-mail addresses under `.example`, a domain
//! that delivers nowhere), and the first version of the rules: the shipped defaults plus
//! which institutions are always asked and synthetic restriction layers around Riga.
//!
//! Its system reads `real_estate` and `addresses` under agreements with VZD (filed and
//! approved in [`crate::demo_governance`]'s plans) and is registered as Riga's TAPIS system
//! for the owners of a territory (`tapis_systems`).
//!
//! Resumable: the planner and institutions are made again, the system registered again, the
//! rules are written only when none are stored.

use anyhow::Context;
use dagr_admin_api::Governance;
use dagr_admin_api::model::UserRole;
use dagr_admin_api::tapis::TapisStore;
use dagr_admin_api::tapis::rules::{self, Layer};
use dagr_admin_api::tapis::store::Institution;
use dagr_engine::Principal;
use serde_json::{Value, json};

/// The municipality that plans in the demo.
pub const MUNICIPALITY: &str = "RIGA";
/// Its planning system.
pub const TAPIS_SYSTEM: &str = "Teritorijas attīstības plānošanas sistēma (TAPIS)";
/// The demo planner's login.
pub const PLANNER: &str = "riga.planner";

/// The demo institutions: code, name.
const INSTITUTIONS: &[(&str, &str)] = &[
    ("VVD", "Valsts vides dienests"),
    ("VI", "Veselības inspekcija"),
    ("NKMP", "Nacionālā kultūras mantojuma pārvalde"),
    ("DAP", "Dabas aizsardzības pārvalde"),
    ("LVC", "VSIA \"Latvijas Valsts ceļi\""),
    ("ST", "AS \"Sadales tīkls\""),
];

fn square(w: f64, s: f64, e: f64, n: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]})
}

/// Seed TAPIS; the `tapis` section of the demo credentials.
pub async fn seed(gov: &Governance, admin: &Principal, system: i64) -> anyhow::Result<Value> {
    let store = TapisStore::new(gov.store());
    let password = crate::demo_governance::demo_password(PLANNER);
    crate::demo_governance::user(
        gov,
        admin,
        PLANNER,
        "Rīgas teritorijas plānotāja",
        Some(MUNICIPALITY),
        UserRole::Consumer,
        &password,
    )
    .await?;
    store
        .add_planner(PLANNER, MUNICIPALITY)
        .await
        .context("making the demo planner")?;
    let token = gov
        .create_user_token(None, PLANNER, "demo tapis planner", None)
        .await
        .context("issuing the demo planner's token")?;
    for (code, name) in INSTITUTIONS {
        store
            .set_institution(&Institution {
                code: (*code).to_owned(),
                name: (*name).to_owned(),
                email: format!("{}@iestade.example", code.to_lowercase()),
            })
            .await
            .with_context(|| format!("adding the institution {code}"))?;
    }
    if store.rules().await?.version == 0 {
        let mut r = rules::defaults();
        for (t, list) in [
            ("detailed_plan", &["VVD", "VI"][..]),
            ("local_plan", &["VVD", "VI", "NKMP"][..]),
            (
                "territorial_plan",
                &["VVD", "VI", "NKMP", "DAP", "LVC", "ST"][..],
            ),
            ("thematic_plan", &["VVD"][..]),
        ] {
            r.institutions
                .always
                .insert(t.to_owned(), list.iter().map(|s| (*s).to_owned()).collect());
        }
        r.institutions.layers = vec![
            Layer {
                code: "riga_historic_centre".into(),
                title: "Rīgas vēsturiskā centra aizsardzības zona (sintētiska)".into(),
                institution: "NKMP".into(),
                geometry: square(24.095, 56.940, 24.135, 56.960),
            },
            Layer {
                code: "natura2000_demo".into(),
                title: "Natura 2000 teritorija (sintētiska)".into(),
                institution: "DAP".into(),
                geometry: square(23.90, 56.95, 24.00, 57.02),
            },
            Layer {
                code: "a2_road_zone".into(),
                title: "Valsts galvenā autoceļa aizsargjosla (sintētiska)".into(),
                institution: "LVC".into(),
                geometry: square(24.20, 56.97, 24.40, 56.98),
            },
        ];
        store
            .save_rules(&r, "demo seeding")
            .await
            .context("writing the first TAPIS rules")?;
    }
    dagr_admin_api::tapis::parcels::set_system(gov, MUNICIPALITY, system)
        .await
        .context("registering Riga's TAPIS system for reading the registers")?;
    dagr_admin_api::tapis::help::seed_defaults(&store)
        .await
        .context("seeding the TAPIS help articles")?;
    Ok(json!({
        "system": {"organisation": MUNICIPALITY, "system_id": system},
        "planner": {
            "login": PLANNER,
            "password": password,
            "token": token.secret,
            "token_id": token.token.id,
        },
        "institutions": INSTITUTIONS.iter().map(|(c, _)| c).collect::<Vec<_>>(),
    }))
}
