//! The location index of `real_estate`: where each property lies, so that a territory looks
//! only at the grid cells it covers instead of passing over every location of the register
//! (docs/tapis.md, "Owners from the registers").
//!
//! **What it holds.** For each row the TAPIS system may see (its masked view, never an
//! unrestricted read) with a cadastre number and a finite centroid: the row id and the
//! centroid; for each row with a land boundary, the boundary's bounding box (WGS 84
//! degrees). No cadastre number, boundary or personal attribute is kept: the properties
//! found are read back by row from the same masked view (unaudited, non-personal columns
//! only), their boundaries tested exactly, and only then looked up by key, audited, as
//! before.
//!
//! **The grid.** A uniform grid over the centroids' extent, cells of [`CELL_LAT_DEG`] ×
//! [`CELL_LON_DEG`] (about 556 × 485 m at Riga), stored as two compressed rows (a start
//! offset per cell): the centroids bucketed by their cell, and each land boundary's box
//! registered in every cell it covers (a box covering more than [`MAX_LAND_CELLS`] cells is
//! kept aside and looked at by every territory). A territory looks at the cells its
//! polygons' bounding boxes cover, widened by [`SLACK_DEG`].
//!
//! **Same answer as the pass it replaces.** A property is in the territory when its centroid
//! is (`geometry::contains`), or when its centroid lies in the territory's box widened by
//! [`super::REACH_M`] and its land boundary shares area or border with the territory
//! (`geometry::overlaps`, on the LKS-92 grid). Every centroid inside the territory lies in a
//! cell its box covers; every boundary meeting it has a box meeting the territory's box
//! (on the grid its straight edges differ from straight lines in degrees by far less than
//! [`SLACK_DEG`] over a property's size). So the candidates are a superset, and the exact
//! tests are the same functions: the unit tests compare with the linear pass for random
//! territories.
//!
//! **Per dataset version and grant.** The index is built from one snapshot under one
//! effective grant on the location columns ([`GrantKey`]: per column, the row scopes of the
//! grants that cover it). It is kept in a process-wide cache keyed by the snapshot's
//! identity (a `Weak` pointer: a reloaded register is a new snapshot, and an index of a
//! dropped snapshot is dropped) and that grant, so systems with equal grants share one. The
//! caller resolves its masked view on every call first: a revoked agreement is refused
//! before the cache is looked at, and a narrowed grant is a different key.
//!
//! **Memory.** 20 bytes per located property and 36 bytes per land boundary, plus 4 bytes
//! per grid cell twice and 4 bytes per (land, cell): about 45 MB for the 1 000 000
//! properties of the demo at 2 000 000 persons (52 % land). The cache keeps at most
//! [`MAX_INDEXES`] indexes and [`MAX_CACHE_BYTES`] in all (least recently used dropped
//! first; the newest is always kept).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use dagr_engine::arrow::array::{Array, AsArray};
use dagr_engine::arrow::compute::cast;
use dagr_engine::arrow::datatypes::{DataType, Float64Type};
use dagr_engine::{Access, Grant, MaskedView, Snapshot};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::super::geometry::{self, Territory};
use super::{BOUNDARY, REACH_M, widened_bbox};

/// Cell height in degrees of latitude (about 556 m).
pub const CELL_LAT_DEG: f64 = 0.005;
/// Cell width in degrees of longitude (about 485 m at Riga's latitude).
pub const CELL_LON_DEG: f64 = 0.008;
/// The most cells a grid has: a wider extent gets coarser cells.
pub const MAX_CELLS: usize = 4_000_000;
/// A land boundary whose box covers more cells than this is kept aside (looked at by every
/// territory) rather than registered in each cell.
pub const MAX_LAND_CELLS: usize = 64;
/// How far (degrees) the cells a territory looks at reach beyond its polygons' boxes.
pub const SLACK_DEG: f64 = 0.0005;
/// The most indexes the cache keeps.
pub const MAX_INDEXES: usize = 8;
/// The most bytes the cache's indexes take together (the newest is kept even when larger).
pub const MAX_CACHE_BYTES: usize = 96 * 1024 * 1024;

/// The columns whose grant decides what the index holds.
const LOCATION_COLUMNS: [&str; 4] = ["cadastre_number", "centroid_lon", "centroid_lat", BOUNDARY];

/// A box (west, south, east, north) in degrees.
type BBox = [f64; 4];

/// The cells a box covers: (first, last) column and (first, last) row.
type Span = ((usize, usize), (usize, usize));

/// One row the index is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located<'a> {
    /// The snapshot row id.
    pub row: u32,
    /// The centroid (lon, lat).
    pub centroid: (f64, f64),
    /// The land boundary as the register has it (GeoJSON text), if any.
    pub boundary: Option<&'a str>,
}

/// What a territory's cells give: rows whose centroid lies in the territory (in the set),
/// and rows of land whose boundary may meet it (to be tested exactly, [`boundary_meets`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Hits {
    /// Centroid in the territory: in the set.
    pub inside: Vec<u32>,
    /// Centroid outside, within reach, the boundary's box meeting the territory's.
    pub edge: Vec<u32>,
}

/// The uniform grid.
#[derive(Debug, Clone)]
struct Grid {
    west: f64,
    south: f64,
    dlon: f64,
    dlat: f64,
    nx: usize,
    ny: usize,
}

impl Grid {
    fn over(b: BBox) -> Grid {
        let (mut dlon, mut dlat) = (CELL_LON_DEG, CELL_LAT_DEG);
        loop {
            let nx = ((b[2] - b[0]) / dlon).floor() as usize + 1;
            let ny = ((b[3] - b[1]) / dlat).floor() as usize + 1;
            if nx.saturating_mul(ny) <= MAX_CELLS {
                return Grid {
                    west: b[0],
                    south: b[1],
                    dlon,
                    dlat,
                    nx,
                    ny,
                };
            }
            dlon *= 2.0;
            dlat *= 2.0;
        }
    }

    fn cells(&self) -> usize {
        self.nx * self.ny
    }

    /// The column of `lon`, clamped to the grid (monotone, so boxes that meet keep meeting).
    fn x(&self, lon: f64) -> usize {
        (((lon - self.west) / self.dlon).floor().max(0.0) as usize).min(self.nx - 1)
    }

    fn y(&self, lat: f64) -> usize {
        (((lat - self.south) / self.dlat).floor().max(0.0) as usize).min(self.ny - 1)
    }

    /// The cell ranges (columns, rows) a box covers.
    fn span(&self, b: BBox) -> Span {
        ((self.x(b[0]), self.x(b[2])), (self.y(b[1]), self.y(b[3])))
    }
}

/// Where the located properties of one snapshot, under one grant, lie.
#[derive(Debug)]
pub(crate) struct LocationIndex {
    grid: Grid,
    /// Per cell, where its centroids start in `row`/`lon`/`lat` (one more than cells).
    point_start: Vec<u32>,
    row: Vec<u32>,
    lon: Vec<f64>,
    lat: Vec<f64>,
    /// Per cell, where its lands start in `land_entries`.
    land_start: Vec<u32>,
    land_entries: Vec<u32>,
    /// Per land: its centroid's position in the point arrays, and its boundary's box.
    land_point: Vec<u32>,
    land_box: Vec<BBox>,
    /// Lands whose box covers more than [`MAX_LAND_CELLS`] cells.
    wide: Vec<u32>,
}

impl LocationIndex {
    /// Build the index of `rows`. Rows without a finite centroid are not located (never in
    /// a territory); a boundary that is not GeoJSON with coordinates counts as none.
    pub(crate) fn build<'a>(rows: impl IntoIterator<Item = Located<'a>>) -> LocationIndex {
        let mut items: Vec<(u32, f64, f64, Option<BBox>)> = Vec::new();
        let mut extent: BBox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for r in rows {
            let (x, y) = r.centroid;
            if !x.is_finite() || !y.is_finite() {
                continue;
            }
            extent = [
                extent[0].min(x),
                extent[1].min(y),
                extent[2].max(x),
                extent[3].max(y),
            ];
            items.push((r.row, x, y, r.boundary.and_then(boundary_box)));
        }
        if items.is_empty() {
            extent = [0.0, 0.0, 0.0, 0.0];
        }
        let grid = Grid::over(extent);
        let cells = grid.cells();
        let cell = |x: f64, y: f64| grid.y(y) * grid.nx + grid.x(x);
        items.sort_unstable_by_key(|&(row, x, y, _)| (cell(x, y), row));

        let mut point_start = vec![0u32; cells + 1];
        for &(_, x, y, _) in &items {
            point_start[cell(x, y) + 1] += 1;
        }
        for c in 0..cells {
            point_start[c + 1] += point_start[c];
        }
        let n = items.len();
        let (mut row, mut lon, mut lat) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut land_point, mut land_box) = (Vec::new(), Vec::new());
        for (i, (r, x, y, b)) in items.into_iter().enumerate() {
            row.push(r);
            lon.push(x);
            lat.push(y);
            if let Some(b) = b {
                land_point.push(i as u32);
                land_box.push(b);
            }
        }

        let mut land_start = vec![0u32; cells + 1];
        let mut wide = Vec::new();
        let spans: Vec<Option<Span>> = land_box
            .iter()
            .enumerate()
            .map(|(l, &b)| {
                let s @ ((x0, x1), (y0, y1)) = grid.span(b);
                if (x1 - x0 + 1) * (y1 - y0 + 1) > MAX_LAND_CELLS {
                    wide.push(l as u32);
                    return None;
                }
                for y in y0..=y1 {
                    for x in x0..=x1 {
                        land_start[y * grid.nx + x + 1] += 1;
                    }
                }
                Some(s)
            })
            .collect();
        for c in 0..cells {
            land_start[c + 1] += land_start[c];
        }
        let mut fill = land_start.clone();
        let mut land_entries = vec![0u32; land_start[cells] as usize];
        for (l, s) in spans.iter().enumerate() {
            let Some(((x0, x1), (y0, y1))) = *s else {
                continue;
            };
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let c = y * grid.nx + x;
                    land_entries[fill[c] as usize] = l as u32;
                    fill[c] += 1;
                }
            }
        }
        LocationIndex {
            grid,
            point_start,
            row,
            lon,
            lat,
            land_start,
            land_entries,
            land_point,
            land_box,
            wide,
        }
    }

    /// How many properties are located.
    pub(crate) fn len(&self) -> usize {
        self.row.len()
    }

    /// How many of them have a land boundary.
    pub(crate) fn lands(&self) -> usize {
        self.land_box.len()
    }

    /// The memory the index takes (its arrays).
    pub(crate) fn bytes(&self) -> usize {
        use std::mem::size_of;
        (self.point_start.capacity() + self.land_start.capacity()) * size_of::<u32>()
            + self.row.capacity() * size_of::<u32>()
            + (self.lon.capacity() + self.lat.capacity()) * size_of::<f64>()
            + (self.land_entries.capacity() + self.land_point.capacity() + self.wide.capacity())
                * size_of::<u32>()
            + self.land_box.capacity() * size_of::<BBox>()
            + size_of::<Self>()
    }

    /// The rows in `t` (centroid inside) and the land rows to test exactly against it.
    pub(crate) fn query(&self, t: &Territory) -> Hits {
        let boxes: Vec<BBox> = t
            .polygons
            .iter()
            .filter_map(|p| p.first())
            .map(|shell| {
                let mut b = ring_box(shell);
                b[0] -= SLACK_DEG;
                b[1] -= SLACK_DEG;
                b[2] += SLACK_DEG;
                b[3] += SLACK_DEG;
                b
            })
            .collect();
        let mut cells: Vec<usize> = Vec::new();
        for &b in &boxes {
            let ((x0, x1), (y0, y1)) = self.grid.span(b);
            for y in y0..=y1 {
                cells.extend((x0..=x1).map(|x| y * self.grid.nx + x));
            }
        }
        cells.sort_unstable();
        cells.dedup();
        let in_boxes = |x: f64, y: f64| {
            boxes
                .iter()
                .any(|b| x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3])
        };
        let mut hits = Hits::default();
        let mut lands: Vec<u32> = self.wide.clone();
        for &c in &cells {
            let (a, z) = (
                self.point_start[c] as usize,
                self.point_start[c + 1] as usize,
            );
            for i in a..z {
                let p = (self.lon[i], self.lat[i]);
                if in_boxes(p.0, p.1) && geometry::contains(t, p) {
                    hits.inside.push(self.row[i]);
                }
            }
            let (a, z) = (self.land_start[c] as usize, self.land_start[c + 1] as usize);
            lands.extend_from_slice(&self.land_entries[a..z]);
        }
        lands.sort_unstable();
        lands.dedup();
        let (w, s, e, n) = widened_bbox(t, REACH_M);
        for l in lands {
            let b = self.land_box[l as usize];
            let meets = boxes
                .iter()
                .any(|q| b[0] <= q[2] && b[2] >= q[0] && b[1] <= q[3] && b[3] >= q[1]);
            if !meets {
                continue;
            }
            let i = self.land_point[l as usize] as usize;
            let p = (self.lon[i], self.lat[i]);
            // As the linear pass: only centroids within reach count by their boundary.
            if p.0 < w || p.0 > e || p.1 < s || p.1 > n || geometry::contains(t, p) {
                continue;
            }
            hits.edge.push(self.row[i]);
        }
        hits.inside.sort_unstable();
        hits.edge.sort_unstable();
        hits
    }
}

/// Whether a land boundary (GeoJSON text) shares area or border with `t`: false when it does
/// not parse.
pub(crate) fn boundary_meets(t: &Territory, boundary: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(boundary) else {
        return false;
    };
    geometry::parse(&v).is_ok_and(|land| geometry::overlaps(t, &land))
}

fn ring_box(ring: &[(f64, f64)]) -> BBox {
    ring.iter()
        .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |b, &(x, y)| {
            [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)]
        })
}

// ---- the box of a GeoJSON boundary, without building a document tree ---------------------

/// The box of every position under `coordinates` of a GeoJSON geometry (text); `None` when
/// it is not JSON or has no position. A superset of what `geometry::parse` accepts: a
/// boundary it refuses is tested (and counts as none) all the same.
pub(crate) fn boundary_box(text: &str) -> Option<BBox> {
    let mut b: BBox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(Geometry(&mut b)).ok()?;
    de.end().ok()?;
    (b[0] <= b[2] && b[1] <= b[3]).then_some(b)
}

/// The geometry object: only `coordinates` is read.
struct Geometry<'a>(&'a mut BBox);

impl<'de> Visitor<'de> for Geometry<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GeoJSON geometry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "coordinates" {
                map.next_value_seed(Coords(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Nested coordinate arrays: a position (an array whose first two elements are numbers)
/// widens the box; a number is handed to the enclosing array.
struct Coords<'a>(&'a mut BBox);

impl<'de> DeserializeSeed<'de> for Coords<'_> {
    type Value = Option<f64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Coords<'_> {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("coordinates")
    }

    fn visit_f64<E>(self, v: f64) -> Result<Option<f64>, E> {
        Ok(Some(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }

    fn visit_str<E>(self, _: &str) -> Result<Option<f64>, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<f64>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<f64>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<f64>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<f64>, A::Error> {
        let (mut first, mut second, mut k) = (None, None, 0);
        while let Some(v) = seq.next_element_seed(Coords(&mut *self.0))? {
            match k {
                0 => first = v,
                1 => second = v,
                _ => {}
            }
            k += 1;
        }
        if let (Some(x), Some(y)) = (first, second) {
            let b = &mut *self.0;
            *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
        }
        Ok(None)
    }
}

// ---- the grant the index was built under ---------------------------------------------------

/// The effective grant on the location columns: per column, the row scopes of the grants
/// that cover it (`None` = every row). Two callers with equal keys see exactly the same
/// location cells of a snapshot (a cell is visible iff a grant covering its column covers
/// its row), so they may share an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantKey(Vec<(&'static str, BTreeSet<Option<String>>)>);

impl GrantKey {
    /// The key of `access` on `dataset`.
    pub(crate) fn of(access: &Access, dataset: &str) -> GrantKey {
        let grants: Option<&[Grant]> = access.grants_for(dataset);
        GrantKey(
            LOCATION_COLUMNS
                .iter()
                .map(|&c| {
                    let scopes: BTreeSet<Option<String>> = match grants {
                        None => [None].into(),
                        Some(gs) => gs
                            .iter()
                            .filter(|g| g.attributes.iter().any(|a| a == c))
                            .map(|g| g.row_scope.clone())
                            .collect(),
                    };
                    let scopes = if scopes.contains(&None) {
                        [None].into()
                    } else {
                        scopes
                    };
                    (c, scopes)
                })
                .collect(),
        )
    }
}

// ---- the cache --------------------------------------------------------------------------------

/// How the cache has been used (process-wide).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexStats {
    /// Indexes built (a first use, a new register version, a new grant).
    pub builds: u64,
    /// Calls answered by an index already built.
    pub reuses: u64,
    /// Indexes held now.
    pub indexes: usize,
    /// Their memory, in bytes.
    pub bytes: usize,
}

struct Entry<S> {
    snapshot: Weak<S>,
    version: u64,
    grant: GrantKey,
    index: Arc<LocationIndex>,
    used: u64,
}

/// Indexes by (snapshot identity, grant), bounded by [`MAX_INDEXES`] and
/// [`MAX_CACHE_BYTES`]. Generic over the snapshot type so that it is tested without an
/// engine.
pub(crate) struct IndexCache<S> {
    entries: Vec<Entry<S>>,
    tick: u64,
    builds: u64,
    reuses: u64,
}

impl<S> Default for IndexCache<S> {
    fn default() -> Self {
        IndexCache {
            entries: Vec::new(),
            tick: 0,
            builds: 0,
            reuses: 0,
        }
    }
}

impl<S> IndexCache<S> {
    /// The index of `snapshot` under `grant`, if built.
    pub(crate) fn get(
        &mut self,
        snapshot: &Arc<S>,
        grant: &GrantKey,
    ) -> Option<Arc<LocationIndex>> {
        self.entries.retain(|e| e.snapshot.strong_count() > 0);
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.iter_mut().find(|e| {
            std::ptr::eq(e.snapshot.as_ptr(), Arc::as_ptr(snapshot)) && &e.grant == grant
        })?;
        e.used = tick;
        self.reuses += 1;
        Some(Arc::clone(&e.index))
    }

    /// Keep `index` for `snapshot` (of `version`) under `grant`: it replaces the index of an
    /// earlier version under the same grant; the least recently used go beyond the bounds.
    pub(crate) fn insert(
        &mut self,
        snapshot: &Arc<S>,
        version: u64,
        grant: GrantKey,
        index: Arc<LocationIndex>,
    ) {
        let replaced: Vec<u64> = self
            .entries
            .iter()
            .filter(|e| e.grant == grant)
            .map(|e| e.version)
            .collect();
        self.entries
            .retain(|e| e.snapshot.strong_count() > 0 && e.grant != grant);
        self.tick += 1;
        self.builds += 1;
        if !replaced.is_empty() {
            tracing::debug!(
                version,
                ?replaced,
                "TAPIS: location index of an earlier version dropped"
            );
        }
        self.entries.push(Entry {
            snapshot: Arc::downgrade(snapshot),
            version,
            grant,
            index,
            used: self.tick,
        });
        while self.entries.len() > 1
            && (self.entries.len() > MAX_INDEXES || self.bytes() > MAX_CACHE_BYTES)
        {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map_or(0, |(i, _)| i);
            self.entries.remove(oldest);
        }
    }

    fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.index.bytes()).sum()
    }

    fn stats(&self) -> IndexStats {
        IndexStats {
            builds: self.builds,
            reuses: self.reuses,
            indexes: self.entries.len(),
            bytes: self.bytes(),
        }
    }

    /// The versions held (for the logs and tests).
    #[cfg(test)]
    fn versions(&self) -> Vec<u64> {
        self.entries.iter().map(|e| e.version).collect()
    }
}

fn cache() -> &'static Mutex<IndexCache<Snapshot>> {
    static CACHE: OnceLock<Mutex<IndexCache<Snapshot>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// The process-wide cache's use so far.
pub fn stats() -> IndexStats {
    cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .stats()
}

/// The index of what `view` shows of the location columns: the cached one of its snapshot
/// under `grant`, or built now from one unaudited pass over the view (the view must have no
/// read log: it hands out no personal attribute). Blocking: call off the I/O runtime.
pub(crate) fn of_view(
    view: &MaskedView,
    grant: &GrantKey,
) -> dagr_engine::Result<Arc<LocationIndex>> {
    if let Some(i) = cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&view.snapshot, grant)
    {
        return Ok(i);
    }
    // One build at a time: a concurrent first call waits, then finds it.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(i) = cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&view.snapshot, grant)
    {
        return Ok(i);
    }
    let started = std::time::Instant::now();
    let index = Arc::new(build_from_view(view)?);
    tracing::info!(
        version = view.snapshot.version(),
        properties = index.len(),
        lands = index.lands(),
        bytes = index.bytes(),
        took_ms = started.elapsed().as_millis() as u64,
        "TAPIS: location index of real_estate built"
    );
    cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            &view.snapshot,
            view.snapshot.version(),
            grant.clone(),
            Arc::clone(&index),
        );
    Ok(index)
}

/// One pass over the view's location columns.
fn build_from_view(view: &MaskedView) -> dagr_engine::Result<LocationIndex> {
    debug_assert!(
        view.log.is_none(),
        "the location pass is not a use of personal data"
    );
    let schema = view.mask.schema();
    let position = |name: &str| schema.index_of(name).map_err(|_| super::not_granted(name));
    let mut projection = vec![
        position("cadastre_number")?,
        position("centroid_lon")?,
        position("centroid_lat")?,
    ];
    let with_boundary = schema.index_of(BOUNDARY).ok();
    projection.extend(with_boundary);
    let projected = view.mask.projected_schema(Some(&projection))?;
    let internal =
        |e: dagr_engine::arrow::error::ArrowError| dagr_engine::Error::Internal(e.to_string());
    let mut batches = Vec::new();
    for c in 0..view.snapshot.chunks().len() {
        let Some(batch) = view.chunk(c, Some(&projection), &projected)? else {
            continue;
        };
        let len = view.snapshot.chunks()[c].num_rows();
        let rows: Vec<u32> = view.mask.chunk_rows(c, len).iter().collect();
        if rows.len() != batch.num_rows() {
            return Err(dagr_engine::Error::Internal(format!(
                "chunk {c} of real_estate: {} visible rows, {} handed out",
                rows.len(),
                batch.num_rows()
            )));
        }
        let column = |name: &str, to: &DataType| {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| super::not_granted(name))?;
            cast(col, to).map_err(internal)
        };
        let cad = column("cadastre_number", &DataType::Utf8)?;
        let lon = column("centroid_lon", &DataType::Float64)?;
        let lat = column("centroid_lat", &DataType::Float64)?;
        let bounds = match with_boundary {
            Some(_) => Some(column(BOUNDARY, &DataType::Utf8)?),
            None => None,
        };
        batches.push((rows, cad, lon, lat, bounds));
    }
    let located = batches.iter().flat_map(|(rows, cad, lon, lat, bounds)| {
        let lon = lon.as_primitive::<Float64Type>();
        let lat = lat.as_primitive::<Float64Type>();
        let bounds = bounds.as_ref().map(|b| b.as_string::<i32>());
        rows.iter().enumerate().filter_map(move |(i, &row)| {
            if cad.is_null(i) || lon.is_null(i) || lat.is_null(i) {
                return None;
            }
            Some(Located {
                row,
                centroid: (lon.value(i), lat.value(i)),
                boundary: bounds.and_then(|b| b.is_valid(i).then(|| b.value(i))),
            })
        })
    });
    Ok(LocationIndex::build(located))
}

#[cfg(test)]
mod tests;
