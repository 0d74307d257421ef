//! Owners from the registers: the properties in a document's territory, derived from
//! `real_estate` and `addresses` through the engine under the municipality's TAPIS system,
//! the notices to their owners, the plan against the cadastre, and the stored shapes a
//! public map may draw (docs/tapis.md, "Owners from the registers").
//!
//! **Which system reads.** A document is read for under its organisation's TAPIS system,
//! registered in `tapis_systems` ([`set_system`]: the admin, or the demo for RIGA), the way
//! MAP reads under its grantor's system. The principal is that consumer system
//! ([`Role::Consumer`], never [`dagr_engine::Access::Unrestricted`]), naming the person who
//! acts when one does: the engine compiles the system's agreements into a masked view, so
//! TAPIS sees only what the register owner (VZD) granted it and nothing once an agreement
//! is revoked (a 409 naming what is missing).
//!
//! **Two reads, one audited set of owners.** First the land: the [`index`] of the
//! register's locations (cadastre number, centroid, boundary's box), built once per register
//! version and effective grant from one pass over the masked view's non-personal columns,
//! gives the rows whose centroid lies in the territory and the land that may cross its
//! edge; those boundaries are read back by row from the same masked view and tested
//! exactly ([`geometry::overlaps`]). None of that hands out a personal attribute, and it is
//! not a use of anyone's data. Every call resolves the masked view first, so a revoked
//! agreement is refused before any index is looked at. Then the owners: only the properties
//! found are looked up by key with `owner_code`, and that read's access record — naming
//! exactly those owners, with a purpose that names the document — is committed to the usage
//! audit before anything is stored, so every owner sees it in "who used my data" (`GET
//! /api/v1/me/usage`). Addresses (no personal data) are looked up by key for the properties
//! found.
//!
//! **Stored per document** (`tapis_parcels`): the set as last derived, each property with
//! its owner's key (a personal code or registration number: it addresses the notices and is
//! never shown by the API), when its current owner was notified, and its shape (centroid,
//! land boundary: [`shapes`] reads them for a public map, with no register read). Every GET
//! derives again (the read is audited each time, and the answer is never stale), and only
//! the changes are written. The properties of the last cadastre comparison stay marked
//! (`listed`) so that [`compare_cadastre`] reports what is gone, new, or has a new owner
//! since then.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use dagr_engine::arrow::array::{Array, AsArray, RecordBatch};
use dagr_engine::arrow::compute::cast;
use dagr_engine::arrow::datatypes::{DataType, Float64Type};
use dagr_engine::{
    AccessPolicy, AuditContext, AuditSink, Channel, MaskedView, Principal, ReadLog, Role,
};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::AppState;
use crate::error::{Problem, Result};
use crate::extract::Caller as Auth;
use crate::gate::RawJson;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::geometry::{self, Territory};
use super::service::Caller;
use super::store::{DocRow, TapisStore, db};

pub mod index;

pub use index::{IndexStats, stats as index_stats};

/// The register of properties (VZD).
pub(crate) const REAL_ESTATE: &str = "real_estate";
/// The register of addresses (VZD).
pub(crate) const ADDRESSES: &str = "addresses";
/// What TAPIS must be granted on `real_estate`.
const REAL_ESTATE_NEEDS: [&str; 7] = [
    "cadastre_number",
    "property_type",
    "address_code",
    "owner_code",
    "owner_kind",
    "centroid_lon",
    "centroid_lat",
];
/// Granted when land boundaries are to count: a land property whose boundary crosses the
/// territory's edge is in the set even when its centroid lies outside.
const BOUNDARY: &str = "boundary";
/// What TAPIS must be granted on `addresses`.
const ADDRESSES_NEEDS: [&str; 2] = ["address_code", "full_address"];
/// How far (metres) a land boundary may reach from its centroid and still be found across
/// the territory's edge: the bounding box of the centroids read is widened by this much.
pub const REACH_M: f64 = 1_000.0;
/// The most properties one territory may hold (a larger one is refused: split the plan).
pub const MAX_PARCELS: usize = 500_000;
/// Rows written per statement.
const INSERT_CHUNK: usize = 100;
/// Metres per degree of latitude (mean).
const M_PER_DEG_LAT: f64 = 111_320.0;

/// A property in a document's territory, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Parcel {
    /// The cadastre number (11 digits).
    pub cadastre_number: String,
    /// Who owns it, as the register says: `person` or `company` (the owner's identity is
    /// never shown).
    pub owner_kind: String,
    /// When its current owner was notified (RFC 3339); null until then.
    pub notified_at: Option<String>,
    /// The property type: land, building, apartment or land_with_building.
    pub property_type: String,
    /// Its address, if addressed.
    pub address: Option<String>,
}

/// The plan against the cadastre: what changed in the territory since the previous
/// comparison (before the first one: since the set was first derived).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CadastreDiff {
    /// The document.
    pub document: i64,
    /// When in the procedure: `consultation` or `approval`.
    pub at: String,
    /// When (RFC 3339).
    pub checked_at: String,
    /// Cadastre numbers no longer in the territory (removed from the cadastre, or outside a
    /// changed territory).
    pub gone: Vec<String>,
    /// Cadastre numbers new in the territory.
    pub added: Vec<String>,
    /// Cadastre numbers whose owner changed.
    pub new_owner: Vec<String>,
    /// Owners notified by this comparison (of new properties and new owners).
    pub notified: usize,
}

/// A property as derived from the registers, with its owner's key.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    cadastre_number: String,
    property_type: String,
    owner_kind: String,
    owner_key: String,
    address: Option<String>,
    /// The centroid (lon, lat), when the register has one.
    centroid: Option<(f64, f64)>,
    /// The land boundary (GeoJSON text, as the register has it), if any.
    boundary: Option<String>,
}

/// A property's shape for a map: non-personal, as stored at the set's last derivation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ParcelShape {
    /// The cadastre number (11 digits).
    pub cadastre_number: String,
    /// The property type: land, building, apartment or land_with_building.
    pub property_type: String,
    /// The centroid, `[lon, lat]` in WGS 84.
    pub centroid: [f64; 2],
    /// The land boundary, an RFC 7946 `Polygon` in WGS 84; null for a building or an
    /// apartment.
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<serde_json::Value>,
}

impl Found {
    /// A stable 64-bit digest (FNV-1a) of the shape (centroid bits, boundary text), stored
    /// beside it so that a derivation compares shapes without reading them back.
    fn shape_hash(&self) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        match self.centroid {
            Some((x, y)) => {
                eat(&[1]);
                eat(&x.to_bits().to_le_bytes());
                eat(&y.to_bits().to_le_bytes());
            }
            None => eat(&[0]),
        }
        match &self.boundary {
            Some(b) => {
                eat(&[1]);
                eat(b.as_bytes());
            }
            None => eat(&[0]),
        }
        h as i64
    }
}

/// The properties of a territory and the access records of the read that found them.
#[derive(Debug)]
struct Derived {
    found: Vec<Found>,
    access_records: Vec<String>,
}

// ---- the system a municipality reads under -----------------------------------------------

/// Register `system` as the consumer system `organisation`'s TAPIS reads the registers
/// under (replaces an earlier one). The system must be a consumer system of that
/// organisation.
pub async fn set_system(gov: &crate::Governance, organisation: &str, system: i64) -> GovResult<()> {
    let s = gov
        .store()
        .system(system)
        .await?
        .ok_or_else(|| GovError::NotFound(format!("system {system}")))?;
    if s.organisation != organisation || s.kind != crate::model::SystemKind::Consumer {
        return Err(GovError::Invalid {
            field: "system_id".into(),
            reason: format!("system {system} is not a consumer system of {organisation}"),
        });
    }
    crate::store::set_module_system(gov.store().pool(), "tapis_systems", organisation, system)
        .await
        .map_err(db)
}

/// The TAPIS system of an organisation; 409 when none is registered.
async fn system_of(store: &TapisStore, organisation: &str) -> GovResult<i64> {
    sqlx::query_scalar("SELECT system_id FROM tapis_systems WHERE organisation = $1")
        .bind(organisation)
        .fetch_optional(&store.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            GovError::Conflict(format!(
                "{organisation} has no TAPIS system registered: TAPIS has no agreements to read \
                 the registers under (an admin registers it)"
            ))
        })
}

// ---- reading the registers -----------------------------------------------------------------

/// The refusal when the TAPIS system may not read what the derivation needs.
fn cannot(organisation: &str, system: i64, dataset: &str, e: dagr_engine::Error) -> GovError {
    match e {
        dagr_engine::Error::DatasetNotFound(_)
        | dagr_engine::Error::NoSnapshot(_)
        | dagr_engine::Error::AccessDenied(_)
        | dagr_engine::Error::AttributeNotVisible(_)
        | dagr_engine::Error::InvalidQuery(_) => GovError::Conflict(format!(
            "TAPIS cannot read `{dataset}` for {organisation}: its system {system} has no \
             agreement that grants what the owners of a territory need ({e})"
        )),
        other => GovError::Engine(other),
    }
}

fn not_granted(column: &str) -> dagr_engine::Error {
    dagr_engine::Error::AttributeNotVisible(format!("`{column}` is not granted"))
}

/// A column of `batch` as text (whatever string layout the engine hands out).
fn texts(batch: &RecordBatch, name: &str) -> GovResult<Vec<Option<String>>> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| GovError::Engine(not_granted(name)))?;
    let col = cast(col, &DataType::Utf8)
        .map_err(|e| GovError::Engine(dagr_engine::Error::Internal(e.to_string())))?;
    let a = col.as_string::<i32>();
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
        .collect())
}

/// A column of `batch` as numbers.
fn floats(batch: &RecordBatch, name: &str) -> GovResult<Vec<Option<f64>>> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| GovError::Engine(not_granted(name)))?;
    let col = cast(col, &DataType::Float64)
        .map_err(|e| GovError::Engine(dagr_engine::Error::Internal(e.to_string())))?;
    let a = col.as_primitive::<Float64Type>();
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect())
}

/// Whether a register boundary is something a map can draw: a GeoJSON geometry with
/// positions under `coordinates` (one that is not is not stored as a shape).
fn drawable(boundary: &str) -> bool {
    index::boundary_box(boundary).is_some()
}

/// The territory's bounding box (west, south, east, north) widened by `margin_m` metres.
pub(crate) fn widened_bbox(t: &Territory, margin_m: f64) -> (f64, f64, f64, f64) {
    let (mut w, mut s, mut e, mut n) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in &t.polygons {
        for &(x, y) in p.first().into_iter().flatten() {
            w = w.min(x);
            e = e.max(x);
            s = s.min(y);
            n = n.max(y);
        }
    }
    let dlat = margin_m / M_PER_DEG_LAT;
    let dlon = margin_m / (M_PER_DEG_LAT * s.max(n.abs()).to_radians().cos().max(0.1));
    (w - dlon, s - dlat, e + dlon, n + dlat)
}

/// Whether a property is in the territory: its centroid inside, or its land boundary
/// (a GeoJSON Polygon) sharing area or border with it. A boundary that does not parse
/// counts by its centroid alone. (The reference the [`index`] is tested against.)
#[cfg(test)]
pub(crate) fn in_territory(t: &Territory, centroid: (f64, f64), boundary: Option<&str>) -> bool {
    geometry::contains(t, centroid) || boundary.is_some_and(|b| index::boundary_meets(t, b))
}

/// The first pass: the cadastre numbers of the visible properties in the territory, from
/// the non-personal attributes only (the view has no log: nothing personal is handed out).
/// The location index of the view's snapshot under `grant` gives the rows whose centroid
/// is inside and the land that may cross the edge; their cadastre numbers and those
/// boundaries are read back by row from the same masked view, the boundaries tested
/// exactly.
fn land_in(
    view: &MaskedView,
    grant: &index::GrantKey,
    t: &Territory,
) -> dagr_engine::Result<Vec<String>> {
    let located = index::of_view(view, grant)?;
    let hits = located.query(t);
    let too_many = || {
        dagr_engine::Error::InvalidQuery(format!(
            "the territory holds more than {MAX_PARCELS} properties"
        ))
    };
    if hits.inside.len() > MAX_PARCELS {
        return Err(too_many());
    }
    let schema = view.mask.schema();
    let cad_at = schema
        .index_of("cadastre_number")
        .map_err(|_| not_granted("cadastre_number"))?;
    let column = |batch: &RecordBatch, name: &str| {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| not_granted(name))?;
        cast(c, &DataType::Utf8).map_err(|e| dagr_engine::Error::Internal(e.to_string()))
    };
    let projection = [cad_at];
    let inside = view.take(
        &hits.inside,
        Some(&projection),
        &view.mask.projected_schema(Some(&projection))?,
    )?;
    let cad = column(&inside, "cadastre_number")?;
    let cad = cad.as_string::<i32>();
    let mut out: Vec<String> = (0..cad.len())
        .filter(|&i| cad.is_valid(i))
        .map(|i| cad.value(i).to_owned())
        .collect();
    if let (Some(b), false) = (schema.index_of(BOUNDARY).ok(), hits.edge.is_empty()) {
        let projection = [cad_at, b];
        let edge = view.take(
            &hits.edge,
            Some(&projection),
            &view.mask.projected_schema(Some(&projection))?,
        )?;
        let (cad, bounds) = (column(&edge, "cadastre_number")?, column(&edge, BOUNDARY)?);
        let (cad, bounds) = (cad.as_string::<i32>(), bounds.as_string::<i32>());
        for i in 0..edge.num_rows() {
            if cad.is_valid(i) && bounds.is_valid(i) && index::boundary_meets(t, bounds.value(i)) {
                out.push(cad.value(i).to_owned());
            }
        }
    }
    if out.len() > MAX_PARCELS {
        return Err(too_many());
    }
    Ok(out)
}

/// Look `keys` up in `view` (noting what is handed out in its log).
fn by_keys(view: &MaskedView, keys: &[String]) -> dagr_engine::Result<RecordBatch> {
    let keys = keys
        .iter()
        .map(|k| view.snapshot.parse_key(k))
        .collect::<dagr_engine::Result<Vec<_>>>()?;
    view.lookup_many(&keys)
}

/// Derive the properties of `doc`'s territory under its organisation's TAPIS system and
/// commit the owners' access record with `purpose` before returning them.
async fn derive(
    state: &AppState,
    doc: &DocRow,
    acting: Option<&str>,
    purpose: String,
) -> GovResult<Derived> {
    let store = TapisStore::new(state.gov.store());
    let system = system_of(&store, &doc.organisation).await?;
    let geometry = doc.territory.as_ref().ok_or_else(|| {
        GovError::Conflict(format!(
            "document {} has no territory yet: set one first (POST …/territory)",
            doc.id
        ))
    })?;
    let territory = geometry::parse(geometry).map_err(|e| {
        GovError::Engine(dagr_engine::Error::Internal(format!(
            "the stored territory of document {} does not parse: {}",
            doc.id, e.0
        )))
    })?;
    let principal = Principal {
        role: Role::Consumer,
        organisation: Some(doc.organisation.clone()),
        system: Some(system.to_string()),
        subject: None,
        user: acting.map(str::to_owned),
        token_id: None,
    };
    let access = state.gov.policy().access(&principal);
    let org = doc.organisation.clone();
    let refuse = move |dataset: &str, e| cannot(&org, system, dataset, e);
    let estates = state
        .engine
        .view(REAL_ESTATE, &access)
        .map_err(|e| refuse(REAL_ESTATE, e))?;
    if let Some(missing) = REAL_ESTATE_NEEDS
        .iter()
        .find(|c| estates.mask.schema().index_of(c).is_err())
    {
        return Err(refuse(REAL_ESTATE, not_granted(missing)));
    }
    let addresses = state
        .engine
        .view(ADDRESSES, &access)
        .map_err(|e| refuse(ADDRESSES, e))?;
    if let Some(missing) = ADDRESSES_NEEDS
        .iter()
        .find(|c| addresses.mask.schema().index_of(c).is_err())
    {
        return Err(refuse(ADDRESSES, not_granted(missing)));
    }

    // CPU work (the location index, built on first use; point-in-polygon tests) off the I/O
    // runtime.
    let grant = index::GrantKey::of(&access, REAL_ESTATE);
    let reads = ReadLog::new();
    let logged = reads.clone();
    let (batch, address_batch) = tokio::task::spawn_blocking(move || {
        let keys = land_in(&estates, &grant, &territory).map_err(|e| (REAL_ESTATE, e))?;
        let estates = estates.with_log(logged.clone());
        let batch = by_keys(&estates, &keys).map_err(|e| (REAL_ESTATE, e))?;
        let codes: Vec<String> = match batch.column_by_name("address_code") {
            Some(c) => {
                let c = cast(c, &DataType::Utf8)
                    .map_err(|e| (REAL_ESTATE, dagr_engine::Error::Internal(e.to_string())))?;
                let a = c.as_string::<i32>();
                let mut v: Vec<String> = (0..a.len())
                    .filter(|&i| a.is_valid(i))
                    .map(|i| a.value(i).to_owned())
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            None => Vec::new(),
        };
        let addresses = addresses.with_log(logged);
        let address_batch = by_keys(&addresses, &codes).map_err(|e| (ADDRESSES, e))?;
        Ok::<_, (&str, dagr_engine::Error)>((batch, address_batch))
    })
    .await
    .map_err(|e| GovError::Engine(dagr_engine::Error::Internal(e.to_string())))?
    .map_err(|(dataset, e)| match e {
        dagr_engine::Error::InvalidQuery(m) if m.contains("more than") => GovError::Invalid {
            field: "territory".into(),
            reason: format!("{m}: split the plan's territory"),
        },
        e => refuse(dataset, e),
    })?;

    // The owners' access record, before anything uses what was read.
    let n = batch.num_rows();
    let context = Arc::new(AuditContext {
        principal,
        purpose: Some(purpose),
        channel: Channel::Rest,
        request_id: dagr_engine::audit::request_id(None),
        query: format!(
            "TAPIS: {n} {REAL_ESTATE} records by key in the territory of document {}",
            doc.id
        ),
    });
    let records = reads.take_records(&context);
    let access_records = if records.is_empty() {
        Vec::new()
    } else {
        AuditSink::commit(&state.audit, records)
            .await
            .map_err(|e| GovError::Engine(dagr_engine::Error::AuditUnavailable(e.to_string())))?
    };

    let full: HashMap<String, String> = {
        let codes = texts(&address_batch, "address_code")?;
        let text = texts(&address_batch, "full_address")?;
        codes
            .into_iter()
            .zip(text)
            .filter_map(|(c, t)| Some((c?, t?)))
            .collect()
    };
    let cad = texts(&batch, "cadastre_number")?;
    let kind = texts(&batch, "property_type")?;
    let owner = texts(&batch, "owner_code")?;
    let owner_kind = texts(&batch, "owner_kind")?;
    let address = texts(&batch, "address_code")?;
    let (lon, lat) = (
        floats(&batch, "centroid_lon")?,
        floats(&batch, "centroid_lat")?,
    );
    let boundary = match batch.column_by_name(BOUNDARY) {
        Some(_) => texts(&batch, BOUNDARY)?,
        None => vec![None; n],
    };
    let mut found: Vec<Found> = (0..n)
        .filter_map(|i| {
            Some(Found {
                cadastre_number: cad[i].clone()?,
                property_type: kind[i].clone().unwrap_or_default(),
                owner_kind: owner_kind[i].clone().unwrap_or_default(),
                owner_key: owner[i].clone()?,
                address: address[i].as_ref().and_then(|a| full.get(a).cloned()),
                centroid: lon[i]
                    .zip(lat[i])
                    .filter(|(x, y)| x.is_finite() && y.is_finite()),
                boundary: boundary[i].clone().filter(|b| drawable(b)),
            })
        })
        .collect();
    found.sort_by(|a, b| a.cadastre_number.cmp(&b.cadastre_number));
    Ok(Derived {
        found,
        access_records,
    })
}

// ---- the stored set ----------------------------------------------------------------------

/// A stored row: what the comparison and the notices need.
#[derive(Debug, Clone)]
struct Stored {
    owner_key: String,
    owner_kind: String,
    property_type: String,
    address: Option<String>,
    /// [`Found::shape_hash`] as stored: the shape is compared without reading it.
    shape_hash: Option<i64>,
    notified_at: Option<i64>,
    present: bool,
    listed: bool,
}

/// Write the derived set of `document`: new properties inserted (marked listed when this
/// is the document's first derivation), properties that left kept as not present while the
/// last comparison listed them (else deleted), a changed owner written with its
/// notification cleared. One transaction; a concurrent derivation of the same document
/// waits for it. Returns the set as stored (what the API shows), without reading it back.
async fn apply(store: &TapisStore, document: i64, d: &Derived) -> GovResult<Vec<Parcel>> {
    let now = Time::now().0;
    let records = serde_json::to_string(&d.access_records).unwrap_or_else(|_| "[]".into());
    let mut tx = store.pool.begin().await.map_err(db)?;
    // The document's row in `tapis_parcel_sets` serialises its derivations: made by the
    // first (a concurrent first waits for it, then finds it), locked by every later one.
    let first = sqlx::query(
        "INSERT INTO tapis_parcel_sets (document, derived_at, access_records) VALUES ($1, $2, $3) \
         ON CONFLICT (document) DO NOTHING",
    )
    .bind(document)
    .bind(now)
    .bind(&records)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if !first {
        sqlx::query(
            "UPDATE tapis_parcel_sets SET derived_at = $1, access_records = $2 WHERE document = $3",
        )
        .bind(now)
        .bind(&records)
        .bind(document)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    let old = stored_rows(&mut tx, document).await?;
    let mut fresh: Vec<&Found> = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(d.found.len());
    for f in &d.found {
        seen.insert(f.cadastre_number.as_str());
        match old.get(&f.cadastre_number) {
            None => fresh.push(f),
            Some(s)
                if s.present
                    && s.owner_key == f.owner_key
                    && s.owner_kind == f.owner_kind
                    && s.property_type == f.property_type
                    && s.address == f.address
                    && s.shape_hash == Some(f.shape_hash()) => {}
            Some(s) => {
                let owner_changed = s.owner_key != f.owner_key;
                sqlx::query(
                    "UPDATE tapis_parcels SET owner_kind = $1, owner_key = $2, property_type = $3, \
                     address = $4, present = 1, \
                     notified_at = CASE WHEN $5 = 1 THEN NULL ELSE notified_at END, \
                     centroid_lon = $8, centroid_lat = $9, boundary = $10, shape_hash = $11 \
                     WHERE document = $6 AND cadastre_number = $7",
                )
                .bind(&f.owner_kind)
                .bind(&f.owner_key)
                .bind(&f.property_type)
                .bind(f.address.as_deref())
                .bind(i64::from(owner_changed))
                .bind(document)
                .bind(&f.cadastre_number)
                .bind(f.centroid.map(|c| c.0))
                .bind(f.centroid.map(|c| c.1))
                .bind(f.boundary.as_deref())
                .bind(f.shape_hash())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
        }
    }
    for (cad, s) in &old {
        if seen.contains(cad.as_str()) || !s.present {
            continue;
        }
        let sql = if s.listed {
            "UPDATE tapis_parcels SET present = 0 WHERE document = $1 AND cadastre_number = $2"
        } else {
            "DELETE FROM tapis_parcels WHERE document = $1 AND cadastre_number = $2"
        };
        sqlx::query(sql)
            .bind(document)
            .bind(cad)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let listed = i64::from(first);
    for chunk in fresh.chunks(INSERT_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO tapis_parcels (document, cadastre_number, property_type, owner_kind, \
             owner_key, address, present, listed, listed_owner, notified_at, centroid_lon, \
             centroid_lat, boundary, shape_hash) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 12;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, 1, ${}, ${}, NULL, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10,
                b + 11,
                b + 12
            ));
        }
        let mut q = sqlx::query(&sql);
        for f in chunk {
            q = q
                .bind(document)
                .bind(&f.cadastre_number)
                .bind(&f.property_type)
                .bind(&f.owner_kind)
                .bind(&f.owner_key)
                .bind(f.address.as_deref())
                .bind(listed)
                .bind(first.then(|| f.owner_key.clone()))
                .bind(f.centroid.map(|c| c.0))
                .bind(f.centroid.map(|c| c.1))
                .bind(f.boundary.as_deref())
                .bind(f.shape_hash());
        }
        q.execute(&mut *tx).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    // `d.found` is sorted by cadastre number; a notification stays while the owner does.
    Ok(d.found
        .iter()
        .map(|f| Parcel {
            cadastre_number: f.cadastre_number.clone(),
            owner_kind: f.owner_kind.clone(),
            notified_at: old
                .get(&f.cadastre_number)
                .filter(|s| s.owner_key == f.owner_key)
                .and_then(|s| s.notified_at)
                .map(|t| Time(t).to_rfc3339()),
            property_type: f.property_type.clone(),
            address: f.address.clone(),
        })
        .collect())
}

async fn stored_rows(c: &mut AnyConnection, document: i64) -> GovResult<BTreeMap<String, Stored>> {
    let rows = sqlx::query(
        "SELECT cadastre_number, owner_key, owner_kind, property_type, address, present, listed, \
         shape_hash, notified_at FROM tapis_parcels WHERE document = $1",
    )
    .bind(document)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("cadastre_number").map_err(db)?,
                Stored {
                    owner_key: r.try_get("owner_key").map_err(db)?,
                    owner_kind: r.try_get("owner_kind").map_err(db)?,
                    property_type: r.try_get("property_type").map_err(db)?,
                    address: r.try_get("address").map_err(db)?,
                    shape_hash: r.try_get("shape_hash").map_err(db)?,
                    notified_at: r.try_get("notified_at").map_err(db)?,
                    present: r.try_get::<i64, _>("present").map_err(db)? == 1,
                    listed: r.try_get::<i64, _>("listed").map_err(db)? == 1,
                },
            ))
        })
        .collect()
}

/// The shapes of a document's properties, as stored at the set's last derivation (`GET
/// …/parcels`, a territory change, a consultation opening, approval): each property's
/// cadastre number, type, centroid and land boundary, by cadastre number. Reads only the
/// stored set — no register read, no access record, nothing about the owners — so a public
/// page may call it; a document whose set was never derived has none. 404 for no document.
pub async fn shapes(state: &AppState, document: i64) -> GovResult<Vec<ParcelShape>> {
    let store = TapisStore::new(state.gov.store());
    store.document(document).await?;
    let rows = sqlx::query(
        "SELECT cadastre_number, property_type, centroid_lon, centroid_lat, boundary \
         FROM tapis_parcels WHERE document = $1 AND present = 1 AND centroid_lon IS NOT NULL \
         AND centroid_lat IS NOT NULL ORDER BY cadastre_number",
    )
    .bind(document)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            let cadastre_number: String = r.try_get("cadastre_number").map_err(db)?;
            let boundary = r
                .try_get::<Option<String>, _>("boundary")
                .map_err(db)?
                .map(|b| {
                    serde_json::from_str(&b).map_err(|e| {
                        GovError::Store(crate::store::StoreError::Corrupt(format!(
                            "tapis_parcels.boundary of {cadastre_number}: {e}"
                        )))
                    })
                })
                .transpose()?;
            Ok(ParcelShape {
                property_type: r.try_get("property_type").map_err(db)?,
                centroid: [
                    r.try_get("centroid_lon").map_err(db)?,
                    r.try_get("centroid_lat").map_err(db)?,
                ],
                boundary,
                cadastre_number,
            })
        })
        .collect()
}

/// The purpose of a derivation for `document`.
pub fn purpose(document: i64) -> String {
    format!("TAPIS document {document}: properties in the planning territory")
}

/// Derive the properties of `document`'s territory from the registers (audited, the purpose
/// naming the document, on behalf of `acting` when a person asks) and store the set.
pub(crate) async fn derive_and_store(
    state: &AppState,
    document: i64,
    acting: Option<&str>,
) -> GovResult<Vec<Parcel>> {
    let store = TapisStore::new(state.gov.store());
    let doc = store.document(document).await?;
    if matches!(
        doc.stage,
        super::model::Stage::InForce | super::model::Stage::Cancelled
    ) {
        return Err(GovError::Conflict(format!(
            "document {document} is {}: its owners are no longer read (the shapes stay on its page)",
            doc.stage.as_str()
        )));
    }
    let d = derive(state, &doc, acting, purpose(document)).await?;
    apply(&store, document, &d).await
}

/// Forget the owners of a document's properties once it is in force or cancelled (their
/// personal codes were kept only to tell them); the shapes stay for its page.
pub(crate) async fn forget_owners(store: &TapisStore, document: i64) -> GovResult<()> {
    sqlx::query("UPDATE tapis_parcels SET owner_key = '', listed_owner = NULL WHERE document = $1")
        .bind(document)
        .execute(&store.pool)
        .await
        .map_err(db)?;
    Ok(())
}

/// Derive the properties again after a change (a new territory): reads the registers under
/// the document's organisation's TAPIS system, audited with the document in the purpose,
/// and stores the set.
pub async fn refresh(state: &AppState, document: i64) -> GovResult<Vec<Parcel>> {
    derive_and_store(state, document, None).await
}

/// [`refresh`] caused by a person (`acting`, named in the access record).
pub async fn refresh_as(
    state: &AppState,
    document: i64,
    acting: Option<&str>,
) -> GovResult<Vec<Parcel>> {
    derive_and_store(state, document, acting).await
}

/// The properties of a document's territory, derived from the registers now (what `GET
/// …/parcels` answers; each call is an audited read naming the document).
pub async fn parcels(state: &AppState, document: i64) -> GovResult<Vec<Parcel>> {
    derive_and_store(state, document, None).await
}

// ---- notices ------------------------------------------------------------------------------

/// The inbox key of an owner.
fn recipient(owner_kind: &str, owner_key: &str) -> String {
    if owner_kind == "person" {
        format!("subject:{owner_key}")
    } else {
        format!("{owner_kind}:{owner_key}")
    }
}

/// Put a notice to each owner of `cadastre` (grouped: one notice per owner) in their inbox
/// once for `cause`, queue it by e-mail to persons who gave an address, and mark their
/// properties notified. Returns how many owners got a new notice.
async fn notify(
    c: &mut AnyConnection,
    doc: &DocRow,
    owners: &BTreeMap<(String, String), Vec<String>>,
    cause: &str,
    subject: &str,
    intro: &str,
) -> GovResult<usize> {
    let now = Time::now().0;
    let mut n = 0;
    for ((kind, key), properties) in owners {
        let to = recipient(kind, key);
        let done: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM tapis_owner_notices WHERE document = $1 AND recipient = $2 AND cause = $3",
        )
        .bind(doc.id)
        .bind(&to)
        .bind(cause)
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
        if done.is_none() {
            let body = format!(
                "{intro}\n\nPlanning document {} \"{}\" ({}).\nYour properties in its territory: {}.\n\n\
                 The document, its versions and how to comment are on its page.",
                doc.id,
                doc.title,
                doc.organisation,
                properties.join(", "),
            );
            sqlx::query(
                "INSERT INTO tapis_owner_notices (document, recipient, cause, subject, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(doc.id)
            .bind(&to)
            .bind(cause)
            .bind(subject)
            .bind(&body)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db)?;
            if kind == "person" {
                // The person's inbox (`GET /api/v1/me/inbox`) and, with an address, e-mail.
                crate::outbox::inbox::notify(
                    c,
                    &to,
                    "tapis",
                    subject,
                    &body,
                    Some(&format!("/tapis/documents/{}", doc.id)),
                )
                .await?;
            }
            n += 1;
        }
        for p in properties {
            sqlx::query(
                "UPDATE tapis_parcels SET notified_at = $1 WHERE document = $2 AND \
                 cadastre_number = $3 AND owner_key = $4 AND notified_at IS NULL",
            )
            .bind(now)
            .bind(doc.id)
            .bind(p)
            .bind(key)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        }
    }
    Ok(n)
}

/// Owners (kind, key) of the present properties of `document`, with their cadastre numbers;
/// `only` limits to those cadastre numbers.
async fn owners_of(
    c: &mut AnyConnection,
    document: i64,
    only: Option<&[String]>,
) -> GovResult<BTreeMap<(String, String), Vec<String>>> {
    let rows = stored_rows(c, document).await?;
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (cad, s) in rows {
        if !s.present || only.is_some_and(|o| !o.contains(&cad)) {
            continue;
        }
        out.entry((s.owner_kind, s.owner_key))
            .or_default()
            .push(cad);
    }
    Ok(out)
}

/// Tell every owner of a property in the territory that `consultation` of `document`
/// opens: one notice per owner and consultation (a second call notifies no one again), in
/// their inbox and, for a person who gave an address, by e-mail; their properties'
/// `notified_at` set. Derives the set first when it never was. Returns how many owners got a
/// notice now.
pub async fn notify_owners(state: &AppState, document: i64, consultation: i64) -> GovResult<usize> {
    let store = TapisStore::new(state.gov.store());
    let doc = store.document(document).await?;
    let of: Option<i64> =
        sqlx::query_scalar("SELECT document FROM tapis_consultations WHERE id = $1")
            .bind(consultation)
            .fetch_optional(&store.pool)
            .await
            .map_err(db)?;
    if of != Some(document) {
        return Err(GovError::NotFound(format!(
            "no consultation {consultation} of document {document}"
        )));
    }
    let derived: Option<i64> =
        sqlx::query_scalar("SELECT derived_at FROM tapis_parcel_sets WHERE document = $1")
            .bind(document)
            .fetch_optional(&store.pool)
            .await
            .map_err(db)?;
    if derived.is_none() {
        refresh(state, document).await?;
    }
    let mut tx = store.pool.begin().await.map_err(db)?;
    let owners = owners_of(&mut tx, document, None).await?;
    let n = notify(
        &mut tx,
        &doc,
        &owners,
        &format!("consultation {consultation}"),
        "Public consultation of a planning document on your property",
        "A public consultation of a planning document whose territory includes your property \
         has opened. You may comment until it ends.",
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(n)
}

// ---- the plan against the cadastre --------------------------------------------------------

/// Compare the plan with the cadastre `at` `consultation` or `approval`: derive the set
/// again (audited), report the properties gone, new, or with a new owner since the last
/// comparison, notify the owners of new properties and new owners, store the result
/// (`GET …/cadastre`), and make the current set the next comparison's base.
pub async fn compare_cadastre(
    state: &AppState,
    document: i64,
    at: &str,
) -> GovResult<CadastreDiff> {
    compare_cadastre_as(state, document, at, None).await
}

/// [`compare_cadastre`] caused by a person (`acting`, named in the access record).
pub async fn compare_cadastre_as(
    state: &AppState,
    document: i64,
    at: &str,
    acting: Option<&str>,
) -> GovResult<CadastreDiff> {
    if !matches!(at, "consultation" | "approval") {
        return Err(GovError::Invalid {
            field: "at".into(),
            reason: "`consultation` or `approval`".into(),
        });
    }
    let store = TapisStore::new(state.gov.store());
    let doc = store.document(document).await?;
    let d = derive(
        state,
        &doc,
        acting,
        format!("TAPIS document {document}: the plan against the cadastre at {at}"),
    )
    .await?;
    apply(&store, document, &d).await?;

    let now = Time::now().0;
    let mut tx = store.pool.begin().await.map_err(db)?;
    let rows = stored_rows(&mut tx, document).await?;
    let listed_owner: HashMap<String, Option<String>> = sqlx::query(
        "SELECT cadastre_number, listed_owner FROM tapis_parcels WHERE document = $1 AND listed = 1",
    )
    .bind(document)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        Ok((
            r.try_get::<String, _>("cadastre_number").map_err(db)?,
            r.try_get::<Option<String>, _>("listed_owner").map_err(db)?,
        ))
    })
    .collect::<GovResult<_>>()?;
    let (mut gone, mut added, mut new_owner) = (Vec::new(), Vec::new(), Vec::new());
    for (cad, s) in &rows {
        match (s.listed, s.present) {
            (true, false) => gone.push(cad.clone()),
            (false, true) => added.push(cad.clone()),
            (true, true)
                if listed_owner.get(cad).cloned().flatten().as_deref()
                    != Some(s.owner_key.as_str()) =>
            {
                new_owner.push(cad.clone());
            }
            _ => {}
        }
    }
    let changed: Vec<String> = added.iter().chain(&new_owner).cloned().collect();
    let check: i64 = sqlx::query_scalar(
        "INSERT INTO tapis_cadastre_checks (document, at_stage, checked_at, gone, added, new_owner, \
         notified, access_records) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING id",
    )
    .bind(document)
    .bind(at)
    .bind(now)
    .bind(serde_json::to_string(&gone).unwrap_or_default())
    .bind(serde_json::to_string(&added).unwrap_or_default())
    .bind(serde_json::to_string(&new_owner).unwrap_or_default())
    .bind(serde_json::to_string(&d.access_records).unwrap_or_default())
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let notified = if changed.is_empty() {
        0
    } else {
        let owners = owners_of(&mut tx, document, Some(&changed)).await?;
        notify(
            &mut tx,
            &doc,
            &owners,
            &format!("cadastre check {check}"),
            "A planning document covers your property",
            "The territory of a planning document includes a property the cadastre now \
             registers as yours.",
        )
        .await?
    };
    sqlx::query("UPDATE tapis_cadastre_checks SET notified = $1 WHERE id = $2")
        .bind(notified as i64)
        .bind(check)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM tapis_parcels WHERE document = $1 AND present = 0")
        .bind(document)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(
        "UPDATE tapis_parcels SET listed = 1, listed_owner = owner_key WHERE document = $1",
    )
    .bind(document)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query("UPDATE tapis_parcel_sets SET compared_at = $1 WHERE document = $2")
        .bind(now)
        .bind(document)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(CadastreDiff {
        document,
        at: at.to_owned(),
        checked_at: Time(now).to_rfc3339(),
        gone,
        added,
        new_owner,
        notified,
    })
}

/// The last comparison of a document with the cadastre; 404 before the first.
pub async fn last_comparison(state: &AppState, document: i64) -> GovResult<CadastreDiff> {
    let store = TapisStore::new(state.gov.store());
    store.document(document).await?;
    let r = sqlx::query(
        "SELECT at_stage, checked_at, gone, added, new_owner, notified FROM tapis_cadastre_checks \
         WHERE document = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(document)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?
    .ok_or_else(|| {
        GovError::NotFound(format!(
            "a comparison of document {document} with the cadastre (made when its consultation \
             opens and at approval)"
        ))
    })?;
    let list = |col: &str| -> GovResult<Vec<String>> {
        let s: String = r.try_get(col).map_err(db)?;
        serde_json::from_str(&s).map_err(|e| {
            GovError::Store(crate::store::StoreError::Corrupt(format!(
                "tapis_cadastre_checks.{col}: {e}"
            )))
        })
    };
    Ok(CadastreDiff {
        document,
        at: r.try_get("at_stage").map_err(db)?,
        checked_at: Time(r.try_get("checked_at").map_err(db)?).to_rfc3339(),
        gone: list("gone")?,
        added: list("added")?,
        new_owner: list("new_owner")?,
        notified: r.try_get::<i64, _>("notified").map_err(db)? as usize,
    })
}

// ---- REST ------------------------------------------------------------------------------------

/// The routes of owners from the registers, merged into TAPIS's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tapis/documents/{id}/parcels", get(get_parcels))
        .route("/api/v1/tapis/documents/{id}/cadastre", get(get_cadastre))
        .route("/api/v1/tapis/systems/{organisation}", put(put_system))
}

/// The system a municipality's TAPIS reads the registers under.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SystemInput {
    /// A consumer system of the organisation (its agreements apply to TAPIS's reads).
    system_id: i64,
}

/// Register the consumer system a municipality's TAPIS reads `real_estate` and `addresses`
/// under (an admin; replaces an earlier one).
#[utoipa::path(put, path = "/api/v1/tapis/systems/{organisation}", tag = "tapis",
    request_body = SystemInput,
    params(("organisation" = String, Path, description = "The municipality's code")),
    responses((status = 200, body = SystemInput), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn put_system(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(organisation): Path<String>,
    body: RawJson,
) -> Result<Json<SystemInput>> {
    let c = Caller::of(&TapisStore::new(s.gov.store()), &p).await?;
    super::service::require_admin(&c)?;
    let b: SystemInput = body.parse()?;
    set_system(&s.gov, &organisation, b.system_id).await?;
    Ok(Json(b))
}

/// Who may see a document's properties: its municipality's planners (404 for another
/// municipality's document) and admins; the acting login, for the access record.
async fn reader(state: &AppState, p: &Principal, document: i64) -> GovResult<Option<String>> {
    let store = TapisStore::new(state.gov.store());
    let c = Caller::of(&store, p).await?;
    let doc = store.document(document).await?;
    match c {
        Caller::Admin => Ok(p.user.clone()),
        Caller::Planner {
            login,
            organisation,
        } if organisation == doc.organisation => Ok(Some(login)),
        Caller::Planner { organisation, .. } => Err(GovError::NotFound(format!(
            "no planning document {document} of {organisation}"
        ))),
        _ => Err(GovError::Forbidden(
            "the properties of a territory are derived from the registers for the document's \
             planners (a person with their own token) and admins"
                .into(),
        )),
    }
}

/// The properties in the document's territory, derived from `real_estate` and `addresses`
/// now under the municipality's TAPIS system (an audited read whose purpose names the
/// document; the owners see it in their usage view). Its planners and admins.
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/parcels", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = [Parcel]), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "no territory, or no agreement to read under"),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_parcels(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Parcel>>> {
    let acting = reader(&s, &p, id).await?;
    Ok(Json(derive_and_store(&s, id, acting.as_deref()).await?))
}

/// The document's last comparison with the cadastre (at the consultation or at approval):
/// properties gone, new, or with a new owner. Its planners and admins.
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/cadastre", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = CadastreDiff), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_cadastre(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<Json<CadastreDiff>> {
    reader(&s, &p, id).await?;
    Ok(Json(last_comparison(&s, id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn square(w: f64, s: f64, d: f64) -> Territory {
        geometry::parse(&json!({"type": "Polygon", "coordinates": [[
            [w, s], [w + d, s], [w + d, s + d], [w, s + d], [w, s]
        ]]}))
        .unwrap()
    }

    #[test]
    fn a_centroid_inside_counts_and_a_hole_does_not() {
        let t = square(24.10, 56.94, 0.01);
        assert!(in_territory(&t, (24.105, 56.945), None));
        assert!(!in_territory(&t, (24.115, 56.945), None));
        let holed = geometry::parse(&json!({"type": "Polygon", "coordinates": [
            [[24.10, 56.94], [24.11, 56.94], [24.11, 56.95], [24.10, 56.95], [24.10, 56.94]],
            [[24.104, 56.944], [24.106, 56.944], [24.106, 56.946], [24.104, 56.946], [24.104, 56.944]]
        ]}))
        .unwrap();
        assert!(!in_territory(&holed, (24.105, 56.945), None));
        assert!(in_territory(&holed, (24.101, 56.941), None));
    }

    #[test]
    fn land_across_the_edge_counts_by_its_boundary() {
        let t = square(24.10, 56.94, 0.01);
        // Centroid 0.0003° east of the edge; its boundary reaches 0.0005° either side.
        let c = (24.1103, 56.945);
        let land = json!({"type": "Polygon", "coordinates": [[
            [24.1098, 56.9447], [24.1108, 56.9447], [24.1108, 56.9453], [24.1098, 56.9453], [24.1098, 56.9447]
        ]]})
        .to_string();
        assert!(!in_territory(&t, c, None));
        assert!(in_territory(&t, c, Some(&land)));
        // Entirely outside; and a boundary that does not parse counts by its centroid.
        let away = json!({"type": "Polygon", "coordinates": [[
            [24.1200, 56.9447], [24.1210, 56.9447], [24.1210, 56.9453], [24.1200, 56.9453], [24.1200, 56.9447]
        ]]})
        .to_string();
        assert!(!in_territory(&t, (24.1205, 56.945), Some(&away)));
        assert!(!in_territory(&t, c, Some("{not json")));
    }

    #[test]
    fn the_bounding_box_is_widened_by_the_reach() {
        let t = square(24.10, 56.94, 0.01);
        let (w, s, e, n) = widened_bbox(&t, REACH_M);
        let dlat = REACH_M / M_PER_DEG_LAT;
        assert!((s - (56.94 - dlat)).abs() < 1e-9 && (n - (56.95 + dlat)).abs() < 1e-9);
        // A degree of longitude is about 61 km at Riga's latitude: 1 km is about 0.0165°.
        assert!((24.10 - w - 0.0165).abs() < 0.0005, "{w}");
        assert!((e - 24.11 - 0.0165).abs() < 0.0005, "{e}");
    }

    #[test]
    fn owners_are_addressed_by_kind() {
        assert_eq!(recipient("person", "010101-12345"), "subject:010101-12345");
        assert_eq!(recipient("company", "40003000000"), "company:40003000000");
        assert_eq!(
            purpose(17),
            "TAPIS document 17: properties in the planning territory"
        );
    }
}
