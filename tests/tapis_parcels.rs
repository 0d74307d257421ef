//! End to end: TAPIS's owners from the registers (docs/tapis.md, "Owners from the
//! registers").
//!
//! 1. On the real `dagr serve` with the embedded demo (3 000 persons, the default seed):
//!    a planner's territory in central Riga gives exactly the properties the demo registers
//!    place in it — computed here, independently, from the same generator's rows (centroid
//!    inside, or a land boundary crossing the edge); each read is in an owner's "who used my
//!    data" with the document in its purpose, and in no one else's; after VZD revokes the
//!    TAPIS agreement on `real_estate` the read is refused and no owner's view changes.
//! 2. In process (the same services `dagr serve` opens): a second document reads through
//!    the same location index; the shapes for a public map are the stored set's centroids
//!    and boundaries, read without an access record; the owners are notified once per
//!    consultation, and the plan against the cadastre reports a property gone, one new and
//!    one with a new owner after the register changes (a new version, indexed afresh),
//!    notifying the new owners.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arrow::array::{Array, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::Float64Type;
use clap::Parser;
use common::{Server, credentials, send, system_token};
use dagr_engine::demo::{DEFAULT_SEED, DemoConfig, generate};
use serde_json::{Value, json};

const DEMO_ROWS: usize = 3000;

/// The test territory: a rectangle in central Riga (west, south, east, north).
const AREA: (f64, f64, f64, f64) = (24.085, 56.935, 24.125, 56.960);

fn territory() -> Value {
    let (w, s, e, n) = AREA;
    json!({"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]})
}

/// One property of the demo register, as this test reads it.
#[derive(Debug, Clone)]
struct Estate {
    cadastre: String,
    owner: String,
    owner_kind: String,
    lon: f64,
    lat: f64,
    boundary: Option<Vec<(f64, f64)>>,
}

/// The demo `real_estate` the server loads (same size, same seed).
fn register() -> (Vec<Estate>, Vec<RecordBatch>) {
    let data = generate(&DemoConfig {
        persons: DEMO_ROWS,
        seed: DEFAULT_SEED,
    })
    .unwrap();
    let re = data
        .into_iter()
        .find(|d| d.definition.name == "real_estate")
        .unwrap();
    let mut out = Vec::new();
    for b in &re.batches {
        let s = |c: &str| b.column_by_name(c).unwrap().as_string::<i32>().clone();
        let f = |c: &str| {
            b.column_by_name(c)
                .unwrap()
                .as_primitive::<Float64Type>()
                .clone()
        };
        let (cad, owner, kind, bound) = (
            s("cadastre_number"),
            s("owner_code"),
            s("owner_kind"),
            s("boundary"),
        );
        let (lon, lat) = (f("centroid_lon"), f("centroid_lat"));
        for i in 0..b.num_rows() {
            let boundary = bound.is_valid(i).then(|| {
                let v: Value = serde_json::from_str(bound.value(i)).unwrap();
                v["coordinates"][0]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                    .collect()
            });
            out.push(Estate {
                cadastre: cad.value(i).to_owned(),
                owner: owner.value(i).to_owned(),
                owner_kind: kind.value(i).to_owned(),
                lon: lon.value(i),
                lat: lat.value(i),
                boundary,
            });
        }
    }
    (out, re.batches)
}

fn in_rect(p: (f64, f64)) -> bool {
    let (w, s, e, n) = AREA;
    p.0 > w && p.0 < e && p.1 > s && p.1 < n
}

fn ray_inside(ring: &[(f64, f64)], p: (f64, f64)) -> bool {
    let mut c = false;
    for w in ring.windows(2) {
        let ((x1, y1), (x2, y2)) = (w[0], w[1]);
        if (y1 > p.1) != (y2 > p.1) && p.0 < (x2 - x1) * (p.1 - y1) / (y2 - y1) + x1 {
            c = !c;
        }
    }
    c
}

fn cross(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let o = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
    };
    o(a, b, c) * o(a, b, d) < 0.0 && o(c, d, a) * o(c, d, b) < 0.0
}

/// Whether a property is in [`AREA`]: its centroid inside, or its boundary meeting it.
fn expected_in(e: &Estate) -> bool {
    if in_rect((e.lon, e.lat)) {
        return true;
    }
    let Some(ring) = &e.boundary else {
        return false;
    };
    let (w, s, ea, n) = AREA;
    let rect = [(w, s), (ea, s), (ea, n), (w, n), (w, s)];
    ring.iter().any(|&p| in_rect(p))
        || rect.iter().any(|&p| ray_inside(ring, p))
        || ring
            .windows(2)
            .any(|a| rect.windows(2).any(|b| cross(a[0], a[1], b[0], b[1])))
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PATCH" => self.http.patch(url),
            m => panic!("method {m}"),
        };
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let (s, _, v) = send(req).await;
        (s, v)
    }

    async fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, Some(token), body.clone()).await;
        assert!((200..300).contains(&s), "{method} {path} {body:?}: {s} {v}");
        v
    }

    /// The TAPIS entries of a person's "who used my data" for `document`.
    async fn usage_for(&self, admin: &str, code: &str, document: i64) -> Vec<Value> {
        let t = self
            .ok(
                "POST",
                "/api/v1/tokens",
                admin,
                Some(json!({"kind": "subject", "subject": code, "label": "parcels test"})),
            )
            .await;
        let token = t["secret"]
            .as_str()
            .or(t["token"].as_str())
            .unwrap()
            .to_owned();
        let usage = self
            .ok("GET", "/api/v1/me/usage?limit=1000", &token, None)
            .await;
        let needle = format!("TAPIS document {document}");
        usage
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["purpose"].as_str().is_some_and(|p| p.contains(&needle)))
            .cloned()
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_properties_of_a_territory_are_the_registers_audited_and_stop_with_the_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), DEMO_ROWS, &[]);
    let creds = credentials(dir.path());
    let api = Api {
        base: server.base.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    };
    let planner = creds["tapis"]["planner"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let citizen = creds["subjects"][0]["token"].as_str().unwrap().to_owned();
    let system = creds["tapis"]["system"]["system_id"].as_i64().unwrap();

    // What the registers hold in the territory, computed here.
    let (estates, _) = register();
    let expected: BTreeMap<String, &Estate> = estates
        .iter()
        .filter(|e| expected_in(e))
        .map(|e| (e.cadastre.clone(), e))
        .collect();
    assert!(
        expected.len() >= 5,
        "a territory with a handful of properties: {}",
        expected.len()
    );
    assert!(
        expected
            .values()
            .any(|e| e.boundary.is_some() && !in_rect((e.lon, e.lat)))
            || expected.len() >= 5,
        "land across the edge, or enough properties"
    );

    let d = api
        .ok(
            "POST",
            "/api/v1/tapis/documents",
            &planner,
            Some(json!({"type": "detailed_plan", "title": "Detālplānojums Rīgas centrā"})),
        )
        .await;
    let id = d["id"].as_i64().unwrap();
    let path = format!("/api/v1/tapis/documents/{id}/parcels");

    // No territory yet: 409 that says so.
    let (s, v) = api.call("GET", &path, Some(&planner), None).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("territory"), "{v}");
    api.ok(
        "POST",
        &format!("/api/v1/tapis/documents/{id}/territory"),
        &planner,
        Some(json!({"geometry": territory()})),
    )
    .await;

    // Only its planners and admins; no token is 401.
    assert_eq!(api.call("GET", &path, None, None).await.0, 401);
    assert_eq!(api.call("GET", &path, Some(&citizen), None).await.0, 403);

    // Exactly the expected set, with the register's owner kinds, nobody notified yet.
    let got = api.ok("GET", &path, &planner, None).await;
    let got = got.as_array().unwrap();
    let numbers: BTreeSet<String> = got
        .iter()
        .map(|p| p["cadastre_number"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(numbers, expected.keys().cloned().collect::<BTreeSet<_>>());
    for p in got {
        let e = expected[p["cadastre_number"].as_str().unwrap()];
        assert_eq!(p["owner_kind"], json!(e.owner_kind), "{p}");
        assert_eq!(p["notified_at"], Value::Null, "{p}");
        assert!(
            p.get("owner_code").is_none() && p.get("owner_key").is_none(),
            "{p}"
        );
    }
    // The same answer again (and the admin sees it too).
    let again = api.ok("GET", &path, &admin, None).await;
    assert_eq!(again.as_array().unwrap().len(), got.len());

    // An owner in the territory sees TAPIS's reads, the purpose naming the document.
    let owner = expected
        .values()
        .find(|e| e.owner_kind == "person")
        .expect("a person owns a property in the territory");
    let seen = api.usage_for(&admin, &owner.owner, id).await;
    assert!(seen.len() >= 2, "both reads in the owner's usage: {seen:?}");
    for e in &seen {
        assert_eq!(e["organisation"], "RIGA", "{e}");
        assert_eq!(e["dataset"], "real_estate", "{e}");
        assert_eq!(e["system"], json!(system.to_string()), "{e}");
    }
    // A person whose properties are all elsewhere does not.
    let inside: BTreeSet<&str> = expected.values().map(|e| e.owner.as_str()).collect();
    let outsider = estates
        .iter()
        .find(|e| e.owner_kind == "person" && !inside.contains(e.owner.as_str()))
        .unwrap();
    assert!(api.usage_for(&admin, &outsider.owner, id).await.is_empty());

    // A consultation opens: the scheduler compares the plan with the cadastre and tells
    // every owner once (their properties' `notified_at`).
    for stage in ["conditions", "drafting"] {
        api.ok(
            "POST",
            &format!("/api/v1/tapis/documents/{id}/stage"),
            &planner,
            Some(json!({"stage": stage})),
        )
        .await;
    }
    let version = api
        .ok(
            "POST",
            &format!("/api/v1/tapis/documents/{id}/versions"),
            &planner,
            Some(
                json!({"label": "1.0", "summary": "s", "paragraphs": [{"id": "p1", "text": "t"}]}),
            ),
        )
        .await;
    let (s, v) = api
        .call(
            "PATCH",
            "/api/v1/tapis/rules",
            Some(&admin),
            Some(json!({"document_types": {"detailed_plan": {"consultation_min_days": 0}}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    api.ok(
        "POST",
        &format!("/api/v1/tapis/documents/{id}/consultations"),
        &planner,
        Some(json!({"version": version["id"],
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()})),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = api.ok("GET", &path, &planner, None).await;
        let waiting = now
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["notified_at"].is_null())
            .count();
        if waiting == 0 {
            assert_eq!(now.as_array().unwrap().len(), got.len());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} owners never told"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let check = api
        .ok(
            "GET",
            &format!("/api/v1/tapis/documents/{id}/cadastre"),
            &planner,
            None,
        )
        .await;
    assert_eq!(check["at"], "consultation", "{check}");

    // A cancelled document's owners are no longer read (their codes are forgotten).
    let gone = api
        .ok(
            "POST",
            "/api/v1/tapis/documents",
            &planner,
            Some(json!({"type": "detailed_plan", "title": "Atcelts"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    api.ok(
        "POST",
        &format!("/api/v1/tapis/documents/{gone}/territory"),
        &planner,
        Some(json!({"geometry": territory()})),
    )
    .await;
    api.ok(
        "POST",
        &format!("/api/v1/tapis/documents/{gone}/stage"),
        &planner,
        Some(json!({"stage": "cancelled", "reason": "parcels test"})),
    )
    .await;
    let (s, v) = api
        .call(
            "GET",
            &format!("/api/v1/tapis/documents/{gone}/parcels"),
            Some(&planner),
            None,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("no longer read"),
        "{v}"
    );
    let seen = api.usage_for(&admin, &owner.owner, id).await;

    // VZD revokes the TAPIS agreement on real_estate: refused, and nothing changes.
    let agreement = creds["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["dataset"] == "real_estate"
                && a["consumer_organisation"] == "RIGA"
                && a["systems"].as_array().unwrap().contains(&json!(system))
        })
        .expect("the demo's TAPIS agreement on real_estate")["id"]
        .clone();
    let vzd = system_token(&creds, "VZD", "provider");
    api.ok(
        "POST",
        &format!("/api/v1/agreements/{}/revoke", agreement.as_i64().unwrap()),
        &vzd,
        Some(json!({"reason": "parcels test"})),
    )
    .await;
    let (s, v) = api.call("GET", &path, Some(&planner), None).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("real_estate"), "{v}");
    assert_eq!(
        api.usage_for(&admin, &owner.owner, id).await.len(),
        seen.len()
    );
}

/// A service input from its JSON.
fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// `dagr serve`'s flags, to open its services in this process.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    serve: dagr::cli::ServeArgs,
}

/// `batches` with `f` applied to each row: `None` drops the row, else its new owner code and
/// centroid.
fn edited(
    batches: &[RecordBatch],
    f: impl Fn(&str) -> Option<(Option<String>, Option<(f64, f64)>)>,
) -> Vec<RecordBatch> {
    batches
        .iter()
        .map(|b| {
            let cad = b
                .column_by_name("cadastre_number")
                .unwrap()
                .as_string::<i32>();
            let keep: Vec<u32> = (0..b.num_rows() as u32)
                .filter(|&i| f(cad.value(i as usize)).is_some())
                .collect();
            let b = arrow::compute::take_record_batch(b, &arrow::array::UInt32Array::from(keep))
                .unwrap();
            let cad = b
                .column_by_name("cadastre_number")
                .unwrap()
                .as_string::<i32>();
            let owner = b.column_by_name("owner_code").unwrap().as_string::<i32>();
            let lon = b
                .column_by_name("centroid_lon")
                .unwrap()
                .as_primitive::<Float64Type>();
            let lat = b
                .column_by_name("centroid_lat")
                .unwrap()
                .as_primitive::<Float64Type>();
            let mut owners = Vec::new();
            let (mut lons, mut lats) = (Vec::new(), Vec::new());
            for i in 0..b.num_rows() {
                let (o, c) = f(cad.value(i)).unwrap();
                owners.push(o.unwrap_or_else(|| owner.value(i).to_owned()));
                let (x, y) = c.unwrap_or((lon.value(i), lat.value(i)));
                lons.push(x);
                lats.push(y);
            }
            let schema = b.schema();
            let mut cols = b.columns().to_vec();
            cols[schema.index_of("owner_code").unwrap()] =
                std::sync::Arc::new(StringArray::from(owners));
            cols[schema.index_of("centroid_lon").unwrap()] =
                std::sync::Arc::new(Float64Array::from(lons));
            cols[schema.index_of("centroid_lat").unwrap()] =
                std::sync::Arc::new(Float64Array::from(lats));
            RecordBatch::try_new(schema, cols).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_notified_once_and_the_plan_is_compared_with_the_cadastre() {
    use dagr_admin_api::tapis::{parcels, service};
    let dir = tempfile::tempdir().unwrap();
    let flags = Flags::parse_from([
        "t",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--demo-rows",
        &DEMO_ROWS.to_string(),
    ]);
    let state = dagr::server::open_services(&flags.serve).await.unwrap();
    let planner = service::Caller::Planner {
        login: "riga.planner".into(),
        organisation: "RIGA".into(),
    };
    let doc = service::create(
        &state,
        &planner,
        &from(json!({"type": "detailed_plan", "title": "Paziņojumi"})),
    )
    .await
    .unwrap();
    service::set_territory(&state, &planner, doc.id, &territory())
        .await
        .unwrap();
    let first = parcels::refresh(&state, doc.id).await.unwrap();
    let (estates, batches) = register();
    let expected: BTreeMap<String, &Estate> = estates
        .iter()
        .filter(|e| expected_in(e))
        .map(|e| (e.cadastre.clone(), e))
        .collect();
    assert_eq!(
        first
            .iter()
            .map(|p| p.cadastre_number.clone())
            .collect::<BTreeSet<_>>(),
        expected.keys().cloned().collect::<BTreeSet<_>>()
    );

    // A second document of the same municipality reads through the same location index
    // (same register version, same grant): no second pass over the register's locations.
    let built = parcels::index_stats();
    assert!(built.builds >= 1 && built.indexes >= 1, "{built:?}");
    let other = service::create(
        &state,
        &planner,
        &from(json!({"type": "local_plan", "title": "Otrs dokuments"})),
    )
    .await
    .unwrap();
    service::set_territory(&state, &planner, other.id, &territory())
        .await
        .unwrap();
    let second = parcels::refresh(&state, other.id).await.unwrap();
    assert_eq!(second, first, "the same properties");
    let reused = parcels::index_stats();
    assert_eq!(reused.builds, built.builds, "{built:?} → {reused:?}");
    assert!(reused.reuses > built.reuses, "{built:?} → {reused:?}");

    // The shapes for a public map: the stored set's centroids and land boundaries, read
    // without an access record (the owner's usage view does not grow).
    let owner = expected
        .values()
        .find(|e| e.owner_kind == "person")
        .unwrap()
        .owner
        .clone();
    let usage = |state: &dagr_admin_api::AppState| {
        let (state, owner) = (state.clone(), owner.clone());
        async move {
            dagr_admin_api::audit::subject_usage_page(
                &state,
                &owner,
                &Default::default(),
                None,
                1000,
            )
            .await
            .unwrap()
            .entries
            .len()
        }
    };
    let seen = usage(&state).await;
    assert!(seen >= 2, "both derivations audited: {seen}");
    let shapes = parcels::shapes(&state, doc.id).await.unwrap();
    assert_eq!(
        usage(&state).await,
        seen,
        "shapes are not a use of anyone's data"
    );
    assert_eq!(
        shapes
            .iter()
            .map(|s| s.cadastre_number.clone())
            .collect::<Vec<_>>(),
        expected.keys().cloned().collect::<Vec<_>>()
    );
    for s in &shapes {
        let e = expected[&s.cadastre_number];
        assert_eq!(s.centroid, [e.lon, e.lat], "{s:?}");
        let ring = s.boundary.as_ref().map(|b| {
            assert_eq!(b["type"], "Polygon", "{b}");
            b["coordinates"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect::<Vec<_>>()
        });
        assert_eq!(ring, e.boundary, "{s:?}");
        let land = matches!(s.property_type.as_str(), "land" | "land_with_building");
        assert_eq!(land, s.boundary.is_some(), "{s:?}");
    }
    assert!(
        shapes.iter().any(|s| s.boundary.is_some()),
        "land in the territory"
    );
    assert!(parcels::shapes(&state, doc.id + 1000).await.is_err());

    // A consultation: every owner notified once, a second call notifies no one.
    for stage in ["conditions", "drafting"] {
        service::move_stage(&state, &planner, doc.id, &from(json!({"stage": stage})))
            .await
            .unwrap();
    }
    let v = service::add_version(
        &state,
        &planner,
        doc.id,
        &from(json!({"label": "1", "summary": "s", "paragraphs": [{"id": "p1", "text": "t"}]})),
    )
    .await
    .unwrap();
    let ends = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let c = service::schedule(
        &state,
        &planner,
        doc.id,
        &from(json!({"version": v.id, "ends_at": ends})),
    )
    .await
    .unwrap();
    let owners: BTreeSet<(&str, &str)> = expected
        .values()
        .map(|e| (e.owner_kind.as_str(), e.owner.as_str()))
        .collect();
    assert_eq!(
        parcels::notify_owners(&state, doc.id, c.id).await.unwrap(),
        owners.len()
    );
    assert_eq!(
        parcels::notify_owners(&state, doc.id, c.id).await.unwrap(),
        0
    );
    assert!(
        parcels::notify_owners(&state, doc.id, c.id + 1000)
            .await
            .is_err()
    );
    let now = parcels::parcels(&state, doc.id).await.unwrap();
    assert!(now.iter().all(|p| p.notified_at.is_some()), "{now:?}");

    // At the consultation nothing changed since the set was first derived.
    let at_consultation = parcels::compare_cadastre(&state, doc.id, "consultation")
        .await
        .unwrap();
    assert!(
        at_consultation.gone.is_empty()
            && at_consultation.added.is_empty()
            && at_consultation.new_owner.is_empty(),
        "{at_consultation:?}"
    );

    // The cadastre changes: one property gone, one sold, one moved into the territory.
    let mut inside = expected.keys();
    let gone = inside.next().unwrap().clone();
    let sold = inside.next().unwrap().clone();
    let buyer = estates
        .iter()
        .find(|e| e.owner_kind == "person" && !owners.contains(&("person", e.owner.as_str())))
        .unwrap()
        .owner
        .clone();
    let moved = estates
        .iter()
        .find(|e| e.boundary.is_none() && !expected.contains_key(&e.cadastre))
        .unwrap()
        .cadastre
        .clone();
    let centre = ((AREA.0 + AREA.2) / 2.0, (AREA.1 + AREA.3) / 2.0);
    let next = edited(&batches, |cad| {
        if cad == gone {
            None
        } else if cad == sold {
            Some((Some(buyer.clone()), None))
        } else if cad == moved {
            Some((None, Some(centre)))
        } else {
            Some((None, None))
        }
    });
    state
        .engine
        .load_batches("real_estate", next)
        .await
        .unwrap();
    assert_eq!(
        parcels::last_comparison(&state, doc.id).await.unwrap(),
        at_consultation
    );
    let diff = parcels::compare_cadastre(&state, doc.id, "approval")
        .await
        .unwrap();
    assert_eq!(diff.gone, vec![gone.as_str()]);
    assert_eq!(diff.added, vec![moved.as_str()]);
    assert_eq!(diff.new_owner, vec![sold.as_str()]);
    assert_eq!(diff.notified, 2, "the buyer and the moved property's owner");
    assert_eq!(
        parcels::last_comparison(&state, doc.id).await.unwrap(),
        diff
    );
    let after = parcels::parcels(&state, doc.id).await.unwrap();
    let by: BTreeMap<&str, &parcels::Parcel> = after
        .iter()
        .map(|p| (p.cadastre_number.as_str(), p))
        .collect();
    assert!(!by.contains_key(gone.as_str()));
    // The new register version was indexed afresh: the moved property was found, and its
    // shape is where it moved to.
    let shapes = parcels::shapes(&state, doc.id).await.unwrap();
    let moved_shape = shapes
        .iter()
        .find(|s| s.cadastre_number == moved)
        .expect("the moved property's shape");
    assert_eq!(moved_shape.centroid, [centre.0, centre.1]);
    assert!(!shapes.iter().any(|s| s.cadastre_number == gone));
    assert!(by[sold.as_str()].notified_at.is_some() && by[moved.as_str()].notified_at.is_some());
    // The next comparison starts from this one: nothing new.
    let quiet = parcels::compare_cadastre(&state, doc.id, "approval")
        .await
        .unwrap();
    assert!(quiet.gone.is_empty() && quiet.added.is_empty() && quiet.new_owner.is_empty());
    assert!(
        parcels::compare_cadastre(&state, doc.id, "whenever")
            .await
            .is_err()
    );
}
