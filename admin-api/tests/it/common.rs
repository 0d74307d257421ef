//! The test world: an engine with a small `people` dataset owned by `OWN`, a metadata
//! store, and tokens for an admin, the owner, two consumer organisations and a foreign
//! owner.
#![allow(unreachable_pub)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use dagr_admin_api::audit::{AuditConfig, AuditStore, TokenIdentity};
use dagr_admin_api::model::SystemKind;
use dagr_admin_api::{AppState, Governance, Loads, LoadsConfig, MetaStore, router_with};
use dagr_engine::arrow::array::{ArrayRef, RecordBatch, StringArray};
use dagr_engine::arrow::datatypes::DataType;
use dagr_engine::{Attribute, DatasetDefinition, Engine, EngineConfig, Principal, Role};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const MUNICIPALITIES: [&str; 3] = ["Rīga", "Jūrmala", "Ogre"];
pub const ROWS: usize = 30;

/// `people`: personal_code (key), given_name, surname, municipality.
pub fn people_def() -> DatasetDefinition {
    DatasetDefinition {
        name: "people".into(),
        owner: "OWN".into(),
        description: "test persons".into(),
        primary_key: vec!["personal_code".into()],
        attributes: vec![
            Attribute::new("personal_code", DataType::Utf8, "code").personal("personal_code"),
            Attribute::new("given_name", DataType::Utf8, "name").personal("personal_code"),
            Attribute::new("surname", DataType::Utf8, "surname").personal("personal_code"),
            Attribute::new("municipality", DataType::Utf8, "where").required(),
        ],
    }
}

/// The purpose of use the test calls declare.
pub const TEST_PURPOSE: &str = "DAGR integration tests";

pub fn code(i: usize) -> String {
    format!("P{i:05}")
}

/// Rows of `def` (string columns only): `<column><i>`, municipality cycling.
pub fn rows(def: &DatasetDefinition, n: usize) -> Vec<RecordBatch> {
    let schema = def.clone().validated().unwrap().arrow_schema();
    let cols: Vec<ArrayRef> = def
        .attributes
        .iter()
        .map(|a| -> ArrayRef {
            Arc::new(StringArray::from_iter_values((0..n).map(
                |i| match a.name.as_str() {
                    "personal_code" => code(i),
                    "municipality" => MUNICIPALITIES[i % 3].to_owned(),
                    other => format!("{other}{i}"),
                },
            )))
        })
        .collect();
    vec![RecordBatch::try_new(schema, cols).unwrap()]
}

/// Which metadata backends to run against.
pub async fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    match std::env::var("DAGR_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => out.push(Backend::Postgres(url)),
        _ if std::env::var("DAGR_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("DAGR_TEST_REQUIRE_POSTGRES=1 but DAGR_TEST_POSTGRES_URL is not set")
        }
        _ => eprintln!("DAGR_TEST_POSTGRES_URL not set: PostgreSQL is not tested in this run"),
    }
    out
}

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// A fresh, empty PostgreSQL database on the test server.
pub async fn fresh_postgres(base: &str) -> String {
    sqlx::any::install_default_drivers();
    let n: u64 = {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        u64::from_le_bytes(b)
    };
    let name = format!("dagr_it_{n:016x}");
    let pool = sqlx::AnyPool::connect(base)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub backend: &'static str,
    /// The audit log's database (`sqlite://DIR/audit.db`, or the test's PostgreSQL database).
    pub audit_url: String,
    pub state: AppState,
    pub app: axum::Router,
    /// The upload service of `app` (uploads in `upload_dir`).
    pub loads: Arc<Loads>,
    pub upload_dir: std::path::PathBuf,
    pub admin: String,
    pub owner: String,
    pub bank: String,
    pub bank_system: i64,
    pub insurer: String,
    pub insurer_system: i64,
    /// An owner of another organisation (`FOREIGN`, owning `parcels`).
    pub foreign_owner: String,
}

pub fn admin_principal() -> Principal {
    Principal {
        role: Role::Admin,
        organisation: None,
        system: None,
        subject: None,
        user: Some("test".into()),
        token_id: None,
    }
}

impl World {
    pub async fn new(backend: &Backend) -> World {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(
            Engine::open_dir(&dir.path().join("snapshots"), EngineConfig::default())
                .await
                .unwrap(),
        );
        engine.create_dataset(people_def()).await.unwrap();
        engine
            .load_batches("people", rows(&people_def(), ROWS))
            .await
            .unwrap();
        let parcels = DatasetDefinition {
            name: "parcels".into(),
            owner: "FOREIGN".into(),
            description: "land".into(),
            primary_key: vec!["parcel".into()],
            attributes: vec![
                Attribute::new("parcel", DataType::Utf8, "id"),
                Attribute::new("area", DataType::Utf8, "m2"),
            ],
        };
        engine.create_dataset(parcels.clone()).await.unwrap();
        engine
            .load_batches("parcels", {
                let schema = parcels.validated().unwrap().arrow_schema();
                vec![
                    RecordBatch::try_new(
                        schema,
                        vec![
                            Arc::new(StringArray::from(vec!["A1", "A2"])) as ArrayRef,
                            Arc::new(StringArray::from(vec!["10", "20"])),
                        ],
                    )
                    .unwrap(),
                ]
            })
            .await
            .unwrap();
        let (store, name, audit_url) = match backend {
            Backend::Sqlite => (
                MetaStore::open_sqlite(&dir.path().join("meta.db"))
                    .await
                    .unwrap(),
                "sqlite",
                format!("sqlite://{}", dir.path().join("audit.db").display()),
            ),
            Backend::Postgres(base) => {
                let url = fresh_postgres(base).await;
                (MetaStore::connect(&url).await.unwrap(), "postgres", url)
            }
        };
        let audit = AuditStore::open(&audit_url, AuditConfig::default())
            .await
            .unwrap();
        let gov = Arc::new(Governance::open(store, Arc::clone(&engine)).await.unwrap());
        let admin_p = admin_principal();
        let admin = gov
            .create_admin_token(None, "bootstrap", None)
            .await
            .unwrap()
            .secret;
        for (code, name) in [("BANK", "Demo Bank"), ("INS", "Demo Insurer")] {
            gov.create_organisation(&admin_p, code, name).await.unwrap();
        }
        let mk = |org: &str, name: &str, kind| {
            let gov = Arc::clone(&gov);
            let admin_p = admin_p.clone();
            let (org, name) = (org.to_owned(), name.to_owned());
            async move {
                let s = gov
                    .create_system(&admin_p, &org, &name, kind, "")
                    .await
                    .unwrap();
                let t = gov
                    .create_system_token(None, s.id, "test", None)
                    .await
                    .unwrap();
                (s.id, t.secret)
            }
        };
        let (_, owner) = mk("OWN", "register", SystemKind::Provider).await;
        let (_, foreign_owner) = mk("FOREIGN", "cadastre", SystemKind::Provider).await;
        let (bank_system, bank) = mk("BANK", "loans", SystemKind::Consumer).await;
        let _ = mk("BANK", "cards", SystemKind::Consumer).await;
        let (insurer_system, insurer) = mk("INS", "claims", SystemKind::Consumer).await;
        let state = AppState {
            engine,
            gov,
            audit,
            identity: Arc::new(TokenIdentity),
            public_url: Default::default(),
        };
        let loads_config = LoadsConfig::under(dir.path());
        let upload_dir = loads_config.upload_dir.clone();
        let loads = Loads::open(&state, loads_config).await.unwrap();
        World {
            _dir: dir,
            backend: name,
            audit_url,
            app: router_with(state.clone(), Arc::clone(&loads)),
            loads,
            upload_dir,
            state,
            admin,
            owner,
            bank,
            bank_system,
            insurer,
            insurer_system,
            foreign_owner,
        }
    }

    /// Call the API: (status, JSON body or null, headers). Declares a purpose of use
    /// ([`TEST_PURPOSE`]), as every reader of personal data must.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, HeaderMap) {
        self.call_with(
            method,
            path,
            token,
            body,
            &[("x-dagr-purpose", TEST_PURPOSE)],
        )
        .await
    }

    /// Call the API with exactly these extra headers (none: no purpose declared).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, HeaderMap) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value, headers)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, Some(token), None).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, Some(token), Some(body)).await;
        (s, v)
    }

    /// A request by the bank for `attributes` of `people` for its `loans` system.
    pub fn request_body(&self, attributes: &[&str], row_scope: Option<&str>) -> Value {
        json!({
            "dataset": "people",
            "attributes": attributes,
            "row_scope": row_scope,
            "purpose": "credit checks of loan applicants",
            "legal_basis": "Credit Institutions Law, s. 57",
            "systems": [self.bank_system],
            "valid_to": "2030-12-31",
        })
    }

    /// File a request as the bank; returns its id.
    pub async fn bank_requests(&self, attributes: &[&str], row_scope: Option<&str>) -> i64 {
        let (s, v) = self
            .post(
                "/api/v1/requests",
                &self.bank,
                self.request_body(attributes, row_scope),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "pending");
        v["id"].as_i64().unwrap()
    }

    /// Status of a request as the admin sees it.
    pub async fn request_status(&self, id: i64) -> String {
        let (s, v) = self
            .get(&format!("/api/v1/requests/{id}"), &self.admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["status"].as_str().unwrap().to_owned()
    }

    /// Record `i` of people as `token` sees it: (status, record or problem).
    pub async fn record(&self, token: &str, i: usize) -> (StatusCode, Value) {
        let (s, v) = self
            .get(
                &format!("/api/v1/datasets/people/records/{}", code(i)),
                token,
            )
            .await;
        (
            s,
            if s == StatusCode::OK {
                v["record"].clone()
            } else {
                v
            },
        )
    }
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// Run `body` against every backend.
#[macro_export]
macro_rules! each_backend {
    (|$w:ident| $body:block) => {
        for backend in $crate::common::backends().await {
            let $w = $crate::common::World::new(&backend).await;
            eprintln!("-- backend {}", $w.backend);
            $body
        }
    };
}
