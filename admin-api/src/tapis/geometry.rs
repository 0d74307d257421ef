//! A document's territory: an RFC 7946 Polygon or MultiPolygon in WGS 84 longitude and
//! latitude, checked before anything is stored (each refusal names its reason), and its area
//! in the national grid LKS-92 TM (EPSG:3059).
//!
//! Checks, in order: the shape of the JSON (type, nesting, numbers); limits ([`MAX_VERTICES`],
//! [`MAX_RINGS`], [`MAX_POLYGONS`]); each ring has at least 4 positions and is closed; every
//! position is in Latvia's extent ([`LATVIA`]); no ring intersects itself; each hole lies
//! inside its shell and crosses neither it nor another hole. Intersection tests are exact
//! on the projected coordinates (orientation signs), pairwise per ring — bounded by the
//! vertex limit.

use serde_json::Value;

/// Most vertices of a territory.
pub const MAX_VERTICES: usize = 5_000;
/// Most rings (shell and holes) of one polygon.
pub const MAX_RINGS: usize = 50;
/// Most polygons of a MultiPolygon.
pub const MAX_POLYGONS: usize = 50;
/// Latvia's extent in degrees (west, south, east, north): the area of use of LKS-92 / Latvia
/// TM (EPSG:3059), onshore.
pub const LATVIA: (f64, f64, f64, f64) = (20.86, 55.67, 28.25, 58.09);

/// A checked territory.
#[derive(Debug, Clone, PartialEq)]
pub struct Territory {
    /// Polygons, each a shell then holes, positions as (lon, lat).
    pub polygons: Vec<Vec<Vec<(f64, f64)>>>,
    /// Area in square metres on the LKS-92 TM grid.
    pub area_m2: f64,
}

/// Why a geometry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeometryError(pub String);

fn err<T>(s: impl Into<String>) -> Result<T, GeometryError> {
    Err(GeometryError(s.into()))
}

fn position(v: &Value, at: &str) -> Result<(f64, f64), GeometryError> {
    let Some(a) = v.as_array() else {
        return err(format!(
            "{at}: a position is an array [longitude, latitude]"
        ));
    };
    if a.len() < 2 || a.len() > 3 {
        return err(format!("{at}: a position has 2 (or 3) numbers"));
    }
    match (a[0].as_f64(), a[1].as_f64()) {
        (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Ok((x, y)),
        _ => err(format!("{at}: a position's coordinates are numbers")),
    }
}

fn rings(v: &Value, at: &str, vertices: &mut usize) -> Result<Vec<Vec<(f64, f64)>>, GeometryError> {
    let Some(rs) = v.as_array() else {
        return err(format!("{at}: a polygon is an array of rings"));
    };
    if rs.is_empty() {
        return err(format!("{at}: a polygon has a shell"));
    }
    if rs.len() > MAX_RINGS {
        return err(format!("{at}: more than {MAX_RINGS} rings"));
    }
    let mut out = Vec::with_capacity(rs.len());
    for (i, r) in rs.iter().enumerate() {
        let at = format!("{at} ring {i}");
        let Some(ps) = r.as_array() else {
            return err(format!("{at}: a ring is an array of positions"));
        };
        *vertices += ps.len();
        if *vertices > MAX_VERTICES {
            return err(format!("more than {MAX_VERTICES} vertices"));
        }
        let ring = ps
            .iter()
            .enumerate()
            .map(|(j, p)| position(p, &format!("{at} position {j}")))
            .collect::<Result<Vec<_>, _>>()?;
        if ring.len() < 4 {
            return err(format!(
                "{at}: a ring has at least 4 positions, this one {}",
                ring.len()
            ));
        }
        if ring.first() != ring.last() {
            return err(format!(
                "{at}: the ring is not closed (its last position is not its first)"
            ));
        }
        for (j, &(x, y)) in ring.iter().enumerate() {
            let (w, s, e, n) = LATVIA;
            if !(w..=e).contains(&x) || !(s..=n).contains(&y) {
                return err(format!(
                    "{at} position {j}: ({x}, {y}) is outside Latvia ({w}–{e} E, {s}–{n} N)"
                ));
            }
        }
        out.push(ring);
    }
    Ok(out)
}

/// Check `geometry` and compute its area.
pub fn parse(geometry: &Value) -> Result<Territory, GeometryError> {
    let kind = geometry.get("type").and_then(Value::as_str);
    let coords = geometry.get("coordinates");
    let mut vertices = 0;
    let polygons = match (kind, coords) {
        (Some("Polygon"), Some(c)) => vec![rings(c, "polygon", &mut vertices)?],
        (Some("MultiPolygon"), Some(Value::Array(ps))) => {
            if ps.is_empty() || ps.len() > MAX_POLYGONS {
                return err(format!("a MultiPolygon has 1 to {MAX_POLYGONS} polygons"));
            }
            ps.iter()
                .enumerate()
                .map(|(i, p)| rings(p, &format!("polygon {i}"), &mut vertices))
                .collect::<Result<Vec<_>, _>>()?
        }
        (Some("Polygon" | "MultiPolygon"), _) => {
            return err("`coordinates` is missing or not an array");
        }
        _ => {
            return err(
                "the geometry is a GeoJSON Polygon or MultiPolygon (`type`, `coordinates`)",
            );
        }
    };
    let projected: Vec<Vec<Vec<(f64, f64)>>> = polygons
        .iter()
        .map(|p| {
            p.iter()
                .map(|r| r.iter().map(|&(x, y)| lks92(x, y)).collect())
                .collect()
        })
        .collect();
    let mut area = 0.0;
    for (pi, p) in projected.iter().enumerate() {
        for (ri, r) in p.iter().enumerate() {
            if let Some((a, b)) = self_intersection(r) {
                return err(format!(
                    "polygon {pi} ring {ri}: the ring intersects itself (segments {a} and {b})"
                ));
            }
        }
        let shell = &p[0];
        for (hi, hole) in p.iter().enumerate().skip(1) {
            if rings_cross(shell, hole) {
                return err(format!(
                    "polygon {pi} hole {hi}: the hole crosses its shell"
                ));
            }
            if !inside(shell, hole[0]) {
                return err(format!(
                    "polygon {pi} hole {hi}: the hole is outside its shell"
                ));
            }
            for (hj, other) in p.iter().enumerate().skip(hi + 1) {
                if rings_cross(hole, other) {
                    return err(format!("polygon {pi}: holes {hi} and {hj} cross"));
                }
            }
        }
        area += ring_area(shell).abs() - p[1..].iter().map(|h| ring_area(h).abs()).sum::<f64>();
    }
    Ok(Territory {
        polygons,
        area_m2: area,
    })
}

/// Whether two territories share area or border: a boundary of one crosses the other's, or
/// a shell lies inside the other (holes are not subtracted: a layer's hole is rare, and
/// asking an institution once too often is the safe side).
pub fn overlaps(a: &Territory, b: &Territory) -> bool {
    let project = |t: &Territory| -> Vec<Vec<Vec<(f64, f64)>>> {
        t.polygons
            .iter()
            .map(|p| {
                p.iter()
                    .map(|r| r.iter().map(|&(x, y)| lks92(x, y)).collect())
                    .collect()
            })
            .collect()
    };
    let (pa, pb) = (project(a), project(b));
    for p in &pa {
        for q in &pb {
            let (sp, sq) = (&p[0], &q[0]);
            if rings_cross(sp, sq) || inside(sp, sq[0]) || inside(sq, sp[0]) {
                return true;
            }
        }
    }
    false
}

/// Whether the position `p` (lon, lat) lies in the territory: inside a polygon's shell and
/// in none of its holes.
pub fn contains(t: &Territory, p: (f64, f64)) -> bool {
    t.polygons.iter().any(|rings| {
        rings
            .first()
            .is_some_and(|shell| inside(shell, p) && !rings[1..].iter().any(|h| inside(h, p)))
    })
}

/// Shoelace area of a closed ring (signed).
fn ring_area(r: &[(f64, f64)]) -> f64 {
    r.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum::<f64>()
        / 2.0
}

fn orient(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

fn on_segment(a: (f64, f64), b: (f64, f64), p: (f64, f64)) -> bool {
    p.0 >= a.0.min(b.0) && p.0 <= a.0.max(b.0) && p.1 >= a.1.min(b.1) && p.1 <= a.1.max(b.1)
}

/// Whether segments ab and cd share a point.
fn segments_meet(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let (d1, d2) = (orient(c, d, a), orient(c, d, b));
    let (d3, d4) = (orient(a, b, c), orient(a, b, d));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    (d1 == 0.0 && on_segment(c, d, a))
        || (d2 == 0.0 && on_segment(c, d, b))
        || (d3 == 0.0 && on_segment(a, b, c))
        || (d4 == 0.0 && on_segment(a, b, d))
}

/// The first pair of non-adjacent segments of a closed ring that meet.
fn self_intersection(r: &[(f64, f64)]) -> Option<(usize, usize)> {
    let n = r.len() - 1; // segments
    for i in 0..n {
        for j in i + 1..n {
            let adjacent = j == i + 1 || (i == 0 && j == n - 1);
            if adjacent {
                // Adjacent segments share an end; they overlap only when collinear and
                // folding back.
                let (a, b, c) = if j == i + 1 {
                    (r[i], r[i + 1], r[j + 1])
                } else {
                    (r[j], r[0], r[1])
                };
                if orient(a, b, c) == 0.0 && on_segment(a, b, c) && c != b {
                    return Some((i, j));
                }
                continue;
            }
            if segments_meet(r[i], r[i + 1], r[j], r[j + 1]) {
                return Some((i, j));
            }
        }
    }
    None
}

fn rings_cross(a: &[(f64, f64)], b: &[(f64, f64)]) -> bool {
    a.windows(2)
        .any(|s| b.windows(2).any(|t| segments_meet(s[0], s[1], t[0], t[1])))
}

/// Ray casting: whether `p` is inside the closed ring `r`.
fn inside(r: &[(f64, f64)], p: (f64, f64)) -> bool {
    let mut c = false;
    for w in r.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            c = !c;
        }
    }
    c
}

/// LKS-92 / Latvia TM (EPSG:3059): transverse Mercator on GRS 80, central meridian 24° E,
/// scale 0.9996, false easting 500 000 m, false northing −6 000 000 m. Returns (easting,
/// northing) in metres (Snyder, "Map Projections — A Working Manual", eq. 8-9 to 8-10).
pub fn lks92(lon: f64, lat: f64) -> (f64, f64) {
    const A: f64 = 6_378_137.0;
    const F: f64 = 1.0 / 298.257_222_101;
    const K0: f64 = 0.9996;
    let e2 = F * (2.0 - F);
    let ep2 = e2 / (1.0 - e2);
    let (phi, lam) = (lat.to_radians(), (lon - 24.0).to_radians());
    let (s, c) = phi.sin_cos();
    let t = phi.tan().powi(2);
    let cc = ep2 * c * c;
    let aa = lam * c;
    let n = A / (1.0 - e2 * s * s).sqrt();
    let e4 = e2 * e2;
    let e6 = e4 * e2;
    let m = A
        * ((1.0 - e2 / 4.0 - 3.0 * e4 / 64.0 - 5.0 * e6 / 256.0) * phi
            - (3.0 * e2 / 8.0 + 3.0 * e4 / 32.0 + 45.0 * e6 / 1024.0) * (2.0 * phi).sin()
            + (15.0 * e4 / 256.0 + 45.0 * e6 / 1024.0) * (4.0 * phi).sin()
            - (35.0 * e6 / 3072.0) * (6.0 * phi).sin());
    let x = K0
        * n
        * (aa
            + (1.0 - t + cc) * aa.powi(3) / 6.0
            + (5.0 - 18.0 * t + t * t + 72.0 * cc - 58.0 * ep2) * aa.powi(5) / 120.0);
    let y = K0
        * (m + n
            * phi.tan()
            * (aa * aa / 2.0
                + (5.0 - t + 9.0 * cc + 4.0 * cc * cc) * aa.powi(4) / 24.0
                + (61.0 - 58.0 * t + t * t + 600.0 * cc - 330.0 * ep2) * aa.powi(6) / 720.0));
    (x + 500_000.0, y - 6_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn square(lon: f64, lat: f64, d: f64) -> Value {
        json!([
            [lon, lat],
            [lon + d, lat],
            [lon + d, lat + d],
            [lon, lat + d],
            [lon, lat]
        ])
    }

    #[test]
    fn lks92_matches_the_grid() {
        // On the central meridian the easting is the false easting.
        let (x, _) = lks92(24.0, 57.0);
        assert!((x - 500_000.0).abs() < 1e-6);
        // Riga, the Freedom Monument (24.1132 E, 56.9514 N) is about (507 000, 312 000)
        // on the LKS-92 grid.
        let (x, y) = lks92(24.1132, 56.9514);
        assert!((506_500.0..507_500.0).contains(&x), "{x}");
        assert!((311_500.0..312_700.0).contains(&y), "{y}");
    }

    #[test]
    fn a_small_square_has_its_area() {
        // 0.01° × 0.01° at 57° N: about 1 113 m × 607 m.
        let t =
            parse(&json!({"type": "Polygon", "coordinates": [square(24.0, 57.0, 0.01)]})).unwrap();
        assert!((650_000.0..700_000.0).contains(&t.area_m2), "{}", t.area_m2);
        // A hole takes its area away.
        let t2 = parse(&json!({"type": "Polygon", "coordinates": [
            square(24.0, 57.0, 0.01), square(24.002, 57.002, 0.002)]}))
        .unwrap();
        assert!(t2.area_m2 < t.area_m2 && t2.area_m2 > 0.9 * t.area_m2);
    }

    #[test]
    fn overlaps_sees_crossing_and_containment() {
        let t = |g: Value| parse(&json!({"type": "Polygon", "coordinates": [g]})).unwrap();
        let big = t(square(24.0, 57.0, 0.1));
        assert!(overlaps(&big, &t(square(24.01, 57.01, 0.01))), "inside");
        assert!(overlaps(&big, &t(square(24.09, 57.09, 0.05))), "crossing");
        assert!(!overlaps(&big, &t(square(24.5, 57.5, 0.01))), "apart");
    }

    #[test]
    fn bad_geometries_are_refused_with_their_reason() {
        let bad = |g: Value, needle: &str| {
            let e = parse(&g).unwrap_err().0;
            assert!(e.contains(needle), "`{needle}` not in `{e}`");
        };
        bad(
            json!({"type": "Polygon", "coordinates": [[[24.0, 57.0], [24.1, 57.0], [24.1, 57.1], [24.0, 57.1]]]}),
            "not closed",
        );
        bad(
            json!({"type": "Polygon", "coordinates": [[[24.0, 57.0], [24.1, 57.0], [24.0, 57.0]]]}),
            "at least 4",
        );
        bad(
            json!({"type": "Polygon", "coordinates": [[[24.0, 57.0], [24.1, 57.1], [24.1, 57.0], [24.0, 57.1], [24.0, 57.0]]]}),
            "intersects itself",
        );
        bad(
            json!({"type": "Polygon", "coordinates": [square(24.0, 57.0, 0.01), square(24.5, 57.5, 0.001)]}),
            "outside its shell",
        );
        bad(
            json!({"type": "Polygon", "coordinates": [square(30.0, 57.0, 0.01)]}),
            "outside Latvia",
        );
        bad(
            json!({"type": "Point", "coordinates": [24.0, 57.0]}),
            "Polygon or MultiPolygon",
        );
        let many: Vec<Value> = (0..=MAX_VERTICES)
            .map(|i| json!([24.0 + i as f64 * 1e-6, 57.0]))
            .collect();
        bad(
            json!({"type": "Polygon", "coordinates": [many]}),
            "vertices",
        );
        bad(
            json!({"type": "Polygon", "coordinates": [[[24.0, "57"], [24.1, 57.0], [24.1, 57.1], [24.0, 57.0]]]}),
            "numbers",
        );
    }
}
