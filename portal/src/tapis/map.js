// DAGR portal, TAPIS: a click on a document's map fills the comment form's longitude and
// latitude (and moves the marker). "Draw an area" turns clicks into the corners of a polygon
// instead: each click adds one, the shape is drawn, and the form's GeoJSON field holds the
// Polygon with its ring closed (from the third corner on). The page works without it: the
// coordinates and the GeoJSON can be typed.
//
// The map's user coordinates are LKS-92 TM metres with the northing negated (see svg.rs);
// the click is inverted to WGS 84 by Newton's method on the same projection the server
// uses (transverse Mercator on GRS 80, Snyder's series).
"use strict";
(() => {
  const A = 6378137, F = 1 / 298.257222101, K0 = 0.9996;
  const E2 = F * (2 - F), EP2 = E2 / (1 - E2), E4 = E2 * E2, E6 = E4 * E2;
  const RAD = Math.PI / 180;

  function lks92(lon, lat) {
    const phi = lat * RAD, lam = (lon - 24) * RAD;
    const s = Math.sin(phi), c = Math.cos(phi);
    const t = Math.tan(phi) ** 2, cc = EP2 * c * c, aa = lam * c;
    const n = A / Math.sqrt(1 - E2 * s * s);
    const m = A * ((1 - E2 / 4 - 3 * E4 / 64 - 5 * E6 / 256) * phi
      - (3 * E2 / 8 + 3 * E4 / 32 + 45 * E6 / 1024) * Math.sin(2 * phi)
      + (15 * E4 / 256 + 45 * E6 / 1024) * Math.sin(4 * phi)
      - (35 * E6 / 3072) * Math.sin(6 * phi));
    const x = K0 * n * (aa + (1 - t + cc) * aa ** 3 / 6
      + (5 - 18 * t + t * t + 72 * cc - 58 * EP2) * aa ** 5 / 120);
    const y = K0 * (m + n * Math.tan(phi) * (aa * aa / 2
      + (5 - t + 9 * cc + 4 * cc * cc) * aa ** 4 / 24
      + (61 - 58 * t + t * t + 600 * cc - 330 * EP2) * aa ** 6 / 720));
    return [x + 500000, y - 6000000];
  }

  // (lon, lat) whose projection is (e, n), starting from (lon, lat) = start.
  function inverse(e, n, start) {
    let [lon, lat] = start;
    const h = 1e-6;
    for (let i = 0; i < 8; i++) {
      const [x, y] = lks92(lon, lat);
      const dx = e - x, dy = n - y;
      if (Math.abs(dx) < 0.001 && Math.abs(dy) < 0.001) break;
      const [x1, y1] = lks92(lon + h, lat), [x2, y2] = lks92(lon, lat + h);
      const a = (x1 - x) / h, b = (x2 - x) / h, c = (y1 - y) / h, d = (y2 - y) / h;
      const det = a * d - b * c;
      lon += (d * dx - b * dy) / det;
      lat += (a * dy - c * dx) / det;
    }
    return [lon, lat];
  }

  // Seven decimals: about a centimetre, and the closing position equals the first.
  const fixed = (v) => Number(v.toFixed(7));

  document.addEventListener("DOMContentLoaded", () => {
    const svg = document.querySelector("svg[data-pick]");
    if (!svg) return;
    const lon = document.getElementById(svg.dataset.lon);
    const lat = document.getElementById(svg.dataset.lat);
    const marker = document.getElementById("pick-marker");
    if (!lon || !lat) return;
    const start = [Number(svg.dataset.lon0), Number(svg.dataset.lat0)];
    svg.classList.add("pickable");

    // Drawing an area: the corners clicked, in WGS 84 and in the map's coordinates.
    const polygon = document.getElementById(svg.dataset.polygon || "");
    const shape = document.getElementById("draw-shape");
    const drawButton = document.getElementById("draw-area");
    const endButton = document.getElementById("draw-end");
    let drawing = false;
    let corners = [];
    let drawn = [];

    function setDrawing(on) {
      drawing = on;
      svg.dataset.mode = on ? "draw" : "pick";
      if (drawButton) drawButton.hidden = on;
      if (endButton) endButton.hidden = !on;
    }

    function showArea() {
      if (!shape) return;
      if (drawn.length === 0) {
        shape.setAttribute("visibility", "hidden");
        return;
      }
      const d = drawn.map(([x, y], i) => `${i ? "L" : "M"}${x} ${y}`).join(" ");
      shape.setAttribute("d", drawn.length > 2 ? d + " Z" : d);
      shape.removeAttribute("visibility");
    }

    if (polygon && shape && drawButton && endButton) {
      drawButton.hidden = false;
      drawButton.addEventListener("click", () => {
        corners = [];
        drawn = [];
        polygon.value = "";
        showArea();
        setDrawing(true);
        const anchor = document.getElementById("anchor-polygon");
        if (anchor) anchor.checked = true;
      });
      endButton.addEventListener("click", () => setDrawing(false));
      const pointAnchor = document.getElementById("anchor-point");
      if (pointAnchor) pointAnchor.addEventListener("change", () => setDrawing(false));
    }

    svg.addEventListener("click", (event) => {
      const ctm = svg.getScreenCTM();
      if (!ctm) return;
      const pt = svg.createSVGPoint();
      pt.x = event.clientX;
      pt.y = event.clientY;
      const p = pt.matrixTransform(ctm.inverse());
      const [lo, la] = inverse(p.x, -p.y, start);
      if (drawing) {
        corners.push([fixed(lo), fixed(la)]);
        drawn.push([p.x, p.y]);
        showArea();
        // A ring needs three corners; it is closed by repeating the first.
        polygon.value = corners.length > 2
          ? JSON.stringify({type: "Polygon", coordinates: [[...corners, corners[0]]]})
          : "";
        svg.dataset.corners = String(corners.length);
        return;
      }
      lon.value = lo.toFixed(7);
      lat.value = la.toFixed(7);
      if (marker) {
        marker.setAttribute("cx", p.x);
        marker.setAttribute("cy", p.y);
        marker.removeAttribute("visibility");
      }
      const anchor = document.getElementById("anchor-point");
      if (anchor) anchor.checked = true;
    });
  });
})();
