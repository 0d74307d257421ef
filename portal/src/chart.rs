//! (Being built: server-side SVG charts.)
