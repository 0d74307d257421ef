//! The start page for visitors not signed in: what DAGR is, and the two ways in.

use askama::Template;
use dagr_admin_api::axum::response::Response;

use crate::i18n::texts;
use crate::session::Visitor;
use crate::web::{Shell, render};

texts! {
    /// Texts of the start page.
    pub(crate) struct HomeText {
        title: "Valsts datu izplatīšanas un pārvaldības platforma", "National data distribution and governance platform";
        lead: "DAGR nodod valsts reģistru datus iestādēm un uzņēmumiem tikai saskaņā ar datu turētāja apstiprinātiem līgumiem, un katra personas datu izmantošana tiek reģistrēta.", "DAGR passes data of the state registers to organisations only under agreements their owners approved, and every use of personal data is logged.";
        org_title: "Organizācijām", "For organisations";
        org_text: "Pārlūkojiet datu katalogu, pieprasiet piekļuvi, izlemiet pieprasījumus un pārvaldiet sistēmas un atslēgas.", "Browse the data catalog, request access, decide requests, and manage systems and tokens.";
        org_action: "Pieslēgties", "Sign in";
        citizen_title: "Iedzīvotājiem", "For citizens";
        citizen_text: "Uzziniet, kuras iestādes, kad un kādam nolūkam izmantoja jūsu personas datus.", "See which organisations used your personal data, when, and why.";
        citizen_action: "Kas izmantoja manus datus", "Who used my data";
        api_title: "Izstrādātājiem", "For developers";
        api_text: "REST API (OpenAPI apraksts) un Arrow Flight / Flight SQL datu saņemšanai.", "The REST API (OpenAPI description) and Arrow Flight / Flight SQL to receive data.";
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct Landing {
    shell: Shell,
    t: &'static HomeText,
}

/// The start page.
pub(crate) fn landing(v: &Visitor) -> Response {
    let t = HomeText::get(v.lang);
    render(&Landing {
        shell: v.shell(t.title),
        t,
    })
}
