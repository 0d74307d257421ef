//! The location index against the linear pass it replaces (random registers and
//! territories from a fixed seed: holes, multipolygons, land across edges, boundaries that
//! do not parse, centroids that are not numbers), the boundary box reader, the grant key
//! and the cache's reuse and bounds.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::tapis::parcels::in_territory;

/// SplitMix64: a small deterministic generator, so the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Degrees of longitude per metre at Riga's latitude, and of latitude.
const LON_M: f64 = 1.0 / 60_700.0;
const LAT_M: f64 = 1.0 / 111_320.0;

/// A star-shaped ring of `k` vertices around `c` with radii (metres) in `r`, closed.
fn star(rng: &mut Rng, c: (f64, f64), k: usize, r: (f64, f64)) -> Vec<[f64; 2]> {
    let slot = std::f64::consts::TAU / k as f64;
    let mut ring: Vec<[f64; 2]> = (0..k)
        .map(|i| {
            let a = slot * (i as f64 + rng.range(-0.25, 0.25));
            let d = rng.range(r.0, r.1);
            [c.0 + d * a.cos() * LON_M, c.1 + d * a.sin() * LAT_M]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// One property of a random register.
struct Prop {
    row: u32,
    centroid: (f64, f64),
    boundary: Option<String>,
}

fn prop(row: u32, centroid: (f64, f64), boundary: Option<String>) -> Prop {
    Prop {
        row,
        centroid,
        boundary,
    }
}

/// A register around central Riga: half land, some boundaries large, a few unreadable,
/// a few centroids that are not numbers.
fn register(rng: &mut Rng, n: usize) -> Vec<Prop> {
    (0..n)
        .map(|i| {
            let mut centroid = (rng.range(24.05, 24.17), rng.range(56.92, 56.98));
            let boundary = if rng.chance(0.5) {
                let big = rng.chance(0.05);
                let r = if big { (300.0, 900.0) } else { (10.0, 120.0) };
                let k = 4 + (rng.next() % 3) as usize;
                let ring = star(rng, centroid, k, r);
                Some(if rng.chance(0.01) {
                    "{not json".to_owned()
                } else {
                    json!({"type": "Polygon", "coordinates": [ring]}).to_string()
                })
            } else {
                None
            };
            if rng.chance(0.002) {
                centroid.0 = f64::NAN;
            }
            Prop {
                row: i as u32 * 3 + 1,
                centroid,
                boundary,
            }
        })
        .collect()
}

/// A random valid territory: one or two polygons, some with a hole.
fn territory(rng: &mut Rng) -> (Value, Territory) {
    let polygons = 1 + usize::from(rng.chance(0.3));
    let mut out = Vec::new();
    for p in 0..polygons {
        let c = (
            rng.range(24.07, 24.15) + p as f64 * 0.03,
            rng.range(56.93, 56.97),
        );
        let r = rng.range(150.0, 2_500.0);
        let k = 5 + (rng.next() % 6) as usize;
        let mut rings = vec![star(rng, c, k, (0.5 * r, r))];
        if rng.chance(0.5) {
            rings.push(star(rng, c, 5, (0.05 * r, 0.2 * r)));
        }
        out.push(rings);
    }
    let v = if out.len() == 1 {
        json!({"type": "Polygon", "coordinates": out[0]})
    } else {
        json!({"type": "MultiPolygon", "coordinates": out})
    };
    let t = geometry::parse(&v).unwrap_or_else(|e| panic!("{v}: {}", e.0));
    (v, t)
}

/// The linear pass the index replaces: every located property in the widened box, tested.
fn linear(props: &[Prop], t: &Territory) -> Vec<u32> {
    let (w, s, e, n) = widened_bbox(t, REACH_M);
    let mut out: Vec<u32> = props
        .iter()
        .filter(|p| {
            let (x, y) = p.centroid;
            x.is_finite()
                && y.is_finite()
                && (w..=e).contains(&x)
                && (s..=n).contains(&y)
                && in_territory(t, (x, y), p.boundary.as_deref())
        })
        .map(|p| p.row)
        .collect();
    out.sort_unstable();
    out
}

fn build(props: &[Prop]) -> LocationIndex {
    LocationIndex::build(props.iter().map(|p| Located {
        row: p.row,
        centroid: p.centroid,
        boundary: p.boundary.as_deref(),
    }))
}

/// What the index answers, the edge rows tested exactly as the caller does.
fn indexed(index: &LocationIndex, props: &[Prop], t: &Territory) -> (Vec<u32>, usize) {
    let hits = index.query(t);
    let by_row: std::collections::HashMap<u32, &Prop> = props.iter().map(|p| (p.row, p)).collect();
    let mut out = hits.inside.clone();
    let mut across = 0;
    for r in &hits.edge {
        if by_row[r]
            .boundary
            .as_deref()
            .is_some_and(|b| boundary_meets(t, b))
        {
            out.push(*r);
            across += 1;
        }
    }
    out.sort_unstable();
    (out, across)
}

#[test]
fn the_index_finds_exactly_what_the_linear_pass_finds() {
    let mut rng = Rng(0x7A91_5EED);
    let props = register(&mut rng, 6_000);
    let index = build(&props);
    assert_eq!(
        index.len(),
        props.iter().filter(|p| p.centroid.0.is_finite()).count()
    );
    let (mut across, mut holed, mut found) = (0, 0, 0);
    for case in 0..120 {
        let (v, t) = territory(&mut rng);
        holed += usize::from(t.polygons.iter().any(|p| p.len() > 1));
        let want = linear(&props, &t);
        let (got, a) = indexed(&index, &props, &t);
        assert_eq!(got, want, "case {case}: {v}");
        across += a;
        found += got.len();
    }
    // The cases exercise what matters: land counted by its boundary, holes, many properties.
    assert!(across >= 50, "land across an edge: {across}");
    assert!(holed >= 30, "territories with a hole: {holed}");
    assert!(found >= 5_000, "properties found: {found}");
}

#[test]
fn a_hole_excludes_centroids_and_land_across_the_edge_counts() {
    let shell = [
        [24.10, 56.94],
        [24.11, 56.94],
        [24.11, 56.95],
        [24.10, 56.95],
        [24.10, 56.94],
    ];
    let hole = [
        [24.104, 56.944],
        [24.106, 56.944],
        [24.106, 56.946],
        [24.104, 56.946],
        [24.104, 56.944],
    ];
    let t = geometry::parse(&json!({"type": "Polygon", "coordinates": [shell, hole]})).unwrap();
    let land = |w: f64| {
        json!({"type": "Polygon", "coordinates": [[
            [w, 56.9447], [w + 0.001, 56.9447], [w + 0.001, 56.9453], [w, 56.9453], [w, 56.9447]
        ]]})
        .to_string()
    };
    let props = vec![
        // Inside; in the hole; outside without a boundary.
        prop(1, (24.101, 56.941), None),
        prop(2, (24.105, 56.945), None),
        prop(3, (24.115, 56.945), None),
        // Land whose centroid lies east of the edge and whose boundary crosses it.
        prop(4, (24.1103, 56.945), Some(land(24.1098))),
        // Land entirely outside; land across the edge but beyond reach of its centroid.
        prop(5, (24.1205, 56.945), Some(land(24.1200))),
        prop(6, (24.20, 56.945), Some(land(24.1098))),
    ];
    let index = build(&props);
    let hits = index.query(&t);
    assert_eq!(hits.inside, vec![1]);
    assert_eq!(hits.edge, vec![4], "5's box misses, 6 is beyond reach");
    assert_eq!(indexed(&index, &props, &t).0, linear(&props, &t));
}

#[test]
fn an_empty_register_and_a_far_territory_find_nothing() {
    let mut rng = Rng(3);
    let (_, t) = territory(&mut rng);
    assert_eq!(build(&[]).query(&t), Hits::default());
    // Properties far from the territory (the query's cells are clamped to the grid).
    let props = vec![prop(9, (27.0, 57.5), None)];
    assert_eq!(build(&props).query(&t), Hits::default());
}

#[test]
fn a_wide_boundary_is_looked_at_by_every_territory() {
    // A boundary covering far more than MAX_LAND_CELLS cells, centroid just outside.
    let big = json!({"type": "Polygon", "coordinates": [[
        [24.00, 56.90], [24.20, 56.90], [24.20, 57.00], [24.00, 57.00], [24.00, 56.90]
    ]]})
    .to_string();
    // The grid spans the centroids: a second property far away makes it many cells.
    let props = vec![
        prop(7, (24.111, 56.945), Some(big)),
        prop(8, (24.5, 57.2), None),
    ];
    let index = build(&props);
    assert_eq!(index.wide.len(), 1);
    let t = geometry::parse(&json!({"type": "Polygon", "coordinates": [[
        [24.10, 56.94], [24.11, 56.94], [24.11, 56.95], [24.10, 56.95], [24.10, 56.94]
    ]]}))
    .unwrap();
    assert_eq!(index.query(&t).edge, vec![7]);
    assert_eq!(indexed(&index, &props, &t).0, linear(&props, &t));
}

#[test]
fn the_box_of_a_boundary_is_read_from_its_coordinates_only() {
    let poly = r#"{"type":"Polygon","bbox":[0,0,99,99],"coordinates":[[[24.1,56.9],[24.2,56.9],[24.2,57.0],[24.1,56.9]]]}"#;
    assert_eq!(boundary_box(poly), Some([24.1, 56.9, 24.2, 57.0]));
    let multi = json!({"type": "MultiPolygon", "coordinates": [
        [[[24.1, 56.9, 3.0], [24.2, 56.9, 3.0], [24.1, 57.0, 3.0], [24.1, 56.9, 3.0]]],
        [[[25, 57], [26, 57], [25, 58], [25, 57]]]
    ]})
    .to_string();
    assert_eq!(boundary_box(&multi), Some([24.1, 56.9, 26.0, 58.0]));
    assert_eq!(boundary_box("{not json"), None);
    assert_eq!(boundary_box(r#"{"type":"Polygon"}"#), None);
    assert_eq!(boundary_box(r#"[1, 2]"#), None);
    assert_eq!(boundary_box(r#"{"coordinates":[[["a","b"]]]}"#), None);
}

fn access(grants: Vec<Grant>) -> Access {
    Access::Grants([("real_estate".to_owned(), grants)].into())
}

#[test]
fn equal_grants_share_a_key_and_a_narrower_grant_does_not() {
    let all = [
        "cadastre_number",
        "owner_code",
        "centroid_lon",
        "centroid_lat",
        "boundary",
    ];
    let a = access(vec![Grant::attributes(all).with_agreement("1")]);
    let b = access(vec![
        Grant::attributes(all).with_agreement("7"),
        Grant::attributes(["owner_code"]).with_row_scope("municipality = 'Rīga'"),
    ]);
    assert_eq!(
        GrantKey::of(&a, "real_estate"),
        GrantKey::of(&b, "real_estate")
    );
    let no_boundary = access(vec![Grant::attributes(all[..4].iter().copied())]);
    assert_ne!(
        GrantKey::of(&a, "real_estate"),
        GrantKey::of(&no_boundary, "real_estate")
    );
    let scoped = access(vec![Grant::attributes(all).with_row_scope("x = 1")]);
    assert_ne!(
        GrantKey::of(&a, "real_estate"),
        GrantKey::of(&scoped, "real_estate")
    );
    // A grant of every row covers what a scoped one adds.
    let both = access(vec![
        Grant::attributes(all),
        Grant::attributes(all).with_row_scope("x = 1"),
    ]);
    assert_eq!(
        GrantKey::of(&a, "real_estate"),
        GrantKey::of(&both, "real_estate")
    );
    assert_eq!(
        GrantKey::of(&Access::Unrestricted, "real_estate"),
        GrantKey::of(&a, "real_estate")
    );
}

#[test]
fn the_cache_reuses_an_index_per_snapshot_and_grant_and_stays_bounded() {
    let key = |scope: Option<&str>| {
        let g = Grant::attributes(LOCATION_COLUMNS);
        GrantKey::of(
            &access(vec![match scope {
                Some(s) => g.with_row_scope(s),
                None => g,
            }]),
            "real_estate",
        )
    };
    let index = || {
        Arc::new(LocationIndex::build([Located {
            row: 1,
            centroid: (24.1, 56.9),
            boundary: None,
        }]))
    };
    let mut cache: IndexCache<u64> = IndexCache::default();
    let v1 = Arc::new(1u64);
    assert!(cache.get(&v1, &key(None)).is_none());
    let built = index();
    cache.insert(&v1, 1, key(None), Arc::clone(&built));
    // A second document's read of the same version under the same grant reuses it.
    let again = cache.get(&v1, &key(None)).unwrap();
    assert!(Arc::ptr_eq(&again, &built));
    assert_eq!((cache.stats().builds, cache.stats().reuses), (1, 1));
    // Another grant is another index.
    assert!(cache.get(&v1, &key(Some("x = 1"))).is_none());
    cache.insert(&v1, 1, key(Some("x = 1")), index());
    assert_eq!(cache.stats().indexes, 2);
    // A new version under the same grant replaces the old one's index.
    let v2 = Arc::new(2u64);
    assert!(cache.get(&v2, &key(None)).is_none());
    cache.insert(&v2, 2, key(None), index());
    assert_eq!(cache.versions(), vec![1, 2]);
    // A dropped snapshot's index goes.
    drop(v1);
    assert!(cache.get(&v2, &key(None)).is_some());
    assert_eq!(cache.versions(), vec![2]);
    // At most MAX_INDEXES, the least recently used dropped first; the newest stays.
    let snapshots: Vec<Arc<u64>> = (10..30).map(Arc::new).collect();
    for s in &snapshots {
        cache.insert(s, **s, key(Some(&format!("x = {s}"))), index());
        assert!(cache.get(&v2, &key(None)).is_some(), "kept while in use");
    }
    assert_eq!(cache.stats().indexes, MAX_INDEXES);
    assert!(cache.versions().contains(&2) && cache.versions().contains(&29));
    assert!(cache.stats().bytes > 0);
}
