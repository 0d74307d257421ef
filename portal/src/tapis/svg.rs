//! A document's territory as a server-rendered SVG map.
//!
//! The map's user coordinates are the national grid LKS-92 TM (EPSG:3059) in metres, with
//! the northing negated (SVG's y grows downwards): a position (lon, lat) is drawn at
//! `(E, −N)` of [`geometry::lks92`], the projection TAPIS computes areas in, so shapes
//! keep their true proportions and the `viewBox` is the territory's extent with a margin.
//! A click is turned back into longitude and latitude by `map.js`: the browser gives the
//! point in user coordinates (the inverse of the screen transform), and the script
//! inverts the same transverse Mercator by Newton's method. Colours are presentation
//! attributes (the portal's content security policy allows no inline styles).

use dagr_admin_api::tapis::geometry;
use serde_json::Value;

/// A polygon drawn on the map: an SVG path (`M … Z` per ring, drawn even-odd so holes
/// stay holes) with its label.
pub(crate) struct Shape {
    /// The path data.
    pub(crate) d: String,
    /// Its label (the `<title>`).
    pub(crate) label: String,
}

/// A pinned point (a comment anchored to a point).
pub(crate) struct Pin {
    /// x in user coordinates.
    pub(crate) x: String,
    /// y in user coordinates.
    pub(crate) y: String,
    /// Its label.
    pub(crate) label: String,
}

/// A map ready for the template.
pub(crate) struct MapView {
    /// The `viewBox` attribute.
    pub(crate) view_box: String,
    /// A marker's radius and a line's width, in user coordinates (a share of the extent).
    pub(crate) r: String,
    /// The territory.
    pub(crate) territory: Vec<Shape>,
    /// Parcels in the territory (drawn under it).
    pub(crate) parcels: Vec<Shape>,
    /// How many properties the document's stored set holds (drawn or not).
    pub(crate) parcels_total: usize,
    /// Whether only some of them are drawn.
    pub(crate) parcels_cut: bool,
    /// Pinned points.
    pub(crate) pins: Vec<Pin>,
    /// Areas drawn over the territory (comments anchored to a polygon).
    pub(crate) areas: Vec<Shape>,
    /// The territory's centre (lon, lat), where `map.js` starts its inversion.
    pub(crate) lon0: String,
    /// See [`MapView::lon0`].
    pub(crate) lat0: String,
    /// Grid extent (min E, min N, max E, max N) of what is drawn.
    extent: (f64, f64, f64, f64),
}

/// Round for a path: 0.1 m.
fn num(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn path(polygon: &[Vec<(f64, f64)>]) -> String {
    let mut d = String::new();
    for ring in polygon {
        for (i, &(lon, lat)) in ring.iter().enumerate() {
            let (e, n) = geometry::lks92(lon, lat);
            d.push(if i == 0 { 'M' } else { 'L' });
            d.push_str(&num(e));
            d.push(' ');
            d.push_str(&num(-n));
        }
        d.push('Z');
    }
    d
}

impl MapView {
    /// The map of a stored territory (a checked GeoJSON Polygon or MultiPolygon), labelled
    /// `label`; `None` if the geometry does not parse (nothing to draw).
    pub(crate) fn of(territory: &Value, label: &str) -> Option<MapView> {
        let t = geometry::parse(territory).ok()?;
        let mut ext = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        let mut deg = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &(lon, lat) in t.polygons.iter().flatten().flatten() {
            let (e, n) = geometry::lks92(lon, lat);
            ext = (ext.0.min(e), ext.1.min(n), ext.2.max(e), ext.3.max(n));
            deg = (
                deg.0.min(lon),
                deg.1.min(lat),
                deg.2.max(lon),
                deg.3.max(lat),
            );
        }
        if ext.0 > ext.2 {
            return None;
        }
        let territory = t
            .polygons
            .iter()
            .map(|p| Shape {
                d: path(p),
                label: label.to_owned(),
            })
            .collect();
        let mut view = MapView {
            view_box: String::new(),
            r: String::new(),
            territory,
            parcels: Vec::new(),
            parcels_total: 0,
            parcels_cut: false,
            pins: Vec::new(),
            areas: Vec::new(),
            lon0: format!("{:.7}", (deg.0 + deg.2) / 2.0),
            lat0: format!("{:.7}", (deg.1 + deg.3) / 2.0),
            extent: ext,
        };
        view.frame();
        Some(view)
    }

    /// Set the `viewBox` around [`MapView::extent`] with a margin of 8 % (at least 10 m).
    fn frame(&mut self) {
        let (w, s, e, n) = self.extent;
        let size = (e - w).max(n - s).max(1.0);
        let m = size * 0.08 + 10.0;
        self.view_box = format!(
            "{} {} {} {}",
            num(w - m),
            num(-n - m),
            num(e - w + 2.0 * m),
            num(n - s + 2.0 * m)
        );
        self.r = num((size + 2.0 * m) / 100.0);
    }

    /// Draw a parcel (a GeoJSON Polygon or MultiPolygon, a property's stored boundary)
    /// labelled `label`; one that does not parse is left out. The map's frame is not
    /// widened: parcels are what the territory touches.
    pub(crate) fn add_parcel(&mut self, geometry: &Value, label: &str) {
        if let Ok(t) = geometry::parse(geometry) {
            self.parcels.extend(t.polygons.iter().map(|p| Shape {
                d: path(p),
                label: label.to_owned(),
            }));
        }
    }

    /// Draw an area (a GeoJSON Polygon, a comment's anchor) labelled `label`; one that does
    /// not parse is left out. The frame is not widened (the territory stays in view).
    pub(crate) fn add_area(&mut self, polygon: &Value, label: &str) {
        if let Ok(t) = geometry::parse(polygon) {
            self.areas.extend(t.polygons.iter().map(|p| Shape {
                d: path(p),
                label: label.to_owned(),
            }));
        }
    }

    /// Pin a point (lon, lat) labelled `label`.
    pub(crate) fn add_pin(&mut self, lon: f64, lat: f64, label: &str) {
        if !(lon.is_finite() && lat.is_finite()) {
            return;
        }
        let (e, n) = geometry::lks92(lon, lat);
        self.pins.push(Pin {
            x: num(e),
            y: num(-n),
            label: label.to_owned(),
        });
    }

    /// The typed coordinates' bounds: Latvia's extent (what the service accepts).
    pub(crate) fn latvia() -> (f64, f64, f64, f64) {
        geometry::LATVIA
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn square(w: f64, s: f64, d: f64) -> Value {
        json!({"type": "Polygon", "coordinates": [[[w, s], [w + d, s], [w + d, s + d], [w, s + d], [w, s]]]})
    }

    #[test]
    fn a_territory_is_drawn_on_the_grid_with_a_margin() {
        let m = MapView::of(&square(24.1, 56.95, 0.002), "Kalēju iela").unwrap();
        assert_eq!(m.territory.len(), 1);
        let d = &m.territory[0].d;
        assert!(d.starts_with('M') && d.ends_with('Z'), "{d}");
        assert_eq!(d.matches('L').count(), 4, "{d}");
        // The first corner projected, northing negated.
        let (e, n) = geometry::lks92(24.1, 56.95);
        assert!(d.starts_with(&format!("M{} {}", num(e), num(-n))), "{d}");
        // The box holds the territory with its margin on every side.
        let v: Vec<f64> = m.view_box.split(' ').map(|x| x.parse().unwrap()).collect();
        let (w, s, ee, nn) = m.extent;
        assert!(v[0] < w && v[0] + v[2] > ee, "{v:?} {w} {ee}");
        assert!(v[1] < -nn && v[1] + v[3] > -s, "{v:?} {s} {nn}");
        assert_eq!(m.lon0, "24.1010000");
        assert_eq!(m.lat0, "56.9510000");
    }

    #[test]
    fn holes_and_parts_are_kept_and_pins_projected() {
        let multi = json!({"type": "MultiPolygon", "coordinates": [
            [[[24.0, 57.0], [24.01, 57.0], [24.01, 57.01], [24.0, 57.01], [24.0, 57.0]],
             [[24.002, 57.002], [24.004, 57.002], [24.004, 57.004], [24.002, 57.004], [24.002, 57.002]]],
            [[[24.02, 57.0], [24.03, 57.0], [24.03, 57.01], [24.02, 57.0]]]
        ]});
        let mut m = MapView::of(&multi, "x").unwrap();
        assert_eq!(m.territory.len(), 2);
        assert_eq!(m.territory[0].d.matches('M').count(), 2, "shell and hole");
        m.add_pin(24.005, 57.005, "1");
        m.add_pin(f64::NAN, 57.0, "bad");
        assert_eq!(m.pins.len(), 1);
        let (e, n) = geometry::lks92(24.005, 57.005);
        assert_eq!(
            (m.pins[0].x.clone(), m.pins[0].y.clone()),
            (num(e), num(-n))
        );
        m.add_parcel(&square(24.001, 57.001, 0.001), "01000010001");
        m.add_parcel(&json!({"type": "Point"}), "nothing");
        assert_eq!(m.parcels.len(), 1);
        m.add_area(&square(24.003, 57.003, 0.001), "7 Koki");
        m.add_area(
            &json!({"type": "Polygon", "coordinates": [[[24.0, 57.0]]]}),
            "bad",
        );
        assert_eq!(m.areas.len(), 1);
        assert_eq!(m.areas[0].label, "7 Koki");
        assert_eq!(m.areas[0].d.matches('L').count(), 4);
        assert!(MapView::of(&json!({"type": "Polygon", "coordinates": []}), "x").is_none());
    }
}
