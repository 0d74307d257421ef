//! End to end: the role × endpoint matrix. Every REST route of the admin API and every Flight
//! RPC is called by each of seven callers on the real `dagr serve`, and the status each gets
//! is compared with the decision written down in [`MATRIX`]: one table, one row per call,
//! one cell per role. A failing run prints the whole observed matrix, every mismatch marked.
//!
//! **A new route without a decision fails.** The REST rows must be exactly the routes of
//! the OpenAPI document the server serves (`GET /api/v1/openapi.json`), plus the routes the
//! document leaves out on purpose ([`UNDOCUMENTED`]); and [`every_router_route_has_a_row`]
//! reads the router's sources (`admin-api/src/**/*.rs`, every `.route(...)`) so that a route
//! added to the router without an OpenAPI annotation fails too. Every action type the Flight
//! service offers (`ListActions`) must have a `DoAction` row. The Flight RPCs are the methods
//! of arrow-flight's `FlightService` trait, each with a row ([`Rpc`]); a new one comes only
//! with a new arrow-flight (the service would not compile without it): give it a row then.
//!
//! **The seven callers** (the columns, in [`ROLES`] order). Over REST and Flight every
//! credential is a bearer token (`admin-api/src/extract.rs`, `flight-server/src/auth.rs`);
//! a token is an admin's, a system's or a subject's (`admin-api/src/auth.rs`). Persons
//! (portal users) have no credential of their own there: a portal session is accepted by the
//! portal only. What a person uses over the API is a token they issue through the portal
//! for one of their organisation's systems (`POST /systems/{id}/tokens`, the portal form),
//! and that is what the two person columns use:
//!
//! | column | credential | principal |
//! | --- | --- | --- |
//! | anonymous | no `Authorization` | — |
//! | citizen | a demo subject token | `subject` |
//! | consumer | BANKA's first consumer system's token (an agreement on `persons`) | `consumer` BANKA |
//! | provider | PMLP's provider system's demo token | `owner` PMLP (system) |
//! | other org | a token `vzd.owner` (the owner person of VZD, which owns other registers) issued through the portal for VZD's provider system | `owner` VZD |
//! | owner | a token `pmlp.owner` (the owner person of PMLP, owner of `persons`) issued through the portal for PMLP's provider system | `owner` PMLP |
//! | admin | the demo admin token | `admin` |
//!
//! So the *owner* column is the role the code treats as the owner (`Role::Owner` of PMLP):
//! the same principal as the provider system's, so its cells equal the provider's by
//! construction. The column stays so that the day persons get a credential of their own
//! over the API the decisions for them are already written down. *Other org* is the person
//! of an organisation that does not own the target acting on PMLP's resources: an owner of
//! another organisation, the strongest such caller (a consumer of another organisation is
//! weaker than the consumer column's BANKA, which is a party to the targets).
//!
//! **Targets** are PMLP's: the dataset `persons`, PMLP's provider system, a spare token of
//! it, the `pmlp.owner` user, BANKA's agreement on `persons`, a pending request of BANKA for
//! `persons` and an applied schema change of `persons` (both made first), a load of
//! `persons`. Real ids, so that a 404 is a decision and not a typo.
//!
//! **Nothing changes state.** Every route checks the caller's role before it reads the body
//! (`admin-api/src/gate.rs`), so mutating routes get a body the handler must refuse (not
//! JSON, or a non-Parquet upload): a caller who may call the route gets 400 (415 for the
//! upload), one who may not 401/403/404. The exceptions, whose allowed cells leave a trace:
//! `POST /schema-changes/{id}/accept` takes no body, so its target is a change already
//! applied (the admin gets 409); the reads of `records` write access records to the audit
//! log; an allowed Flight `DoPut` of an upload that announces no row count is refused
//! *after* it is recorded in the load history (a refused load, nothing committed). None of
//! them changes what a later cell observes.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Instant;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginTransactionRequest, ActionCancelQueryRequest,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedSubstraitPlanRequest, ActionEndSavepointRequest,
    ActionEndTransactionRequest, Any, CommandStatementQuery, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, HandshakeRequest, Ticket,
};
use common::{PURPOSE, Server, credentials, get_auth, post_auth, system_token};
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Persons in the demo: the matrix reads little.
const DEMO_ROWS: usize = 200;

/// The callers, in the order of every row's cells.
const ROLES: [&str; 7] = [
    "anonymous",
    "citizen",
    "consumer",
    "provider",
    "other org",
    "owner",
    "admin",
];

/// What a mutating REST call sends.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// Nothing.
    None,
    /// `Content-Type: application/json` and a body that is not JSON: 400 for a caller who
    /// may call the route, since the role is checked before the body is parsed.
    BadJson,
    /// `Content-Type: text/plain`: not a Parquet upload (415 for a caller who may load).
    NotParquet,
}

/// A Flight RPC as the matrix calls it (on `persons`, with a declared purpose).
#[derive(Debug, Clone, Copy)]
enum Rpc {
    /// `Handshake` with `BasicAuth` (password = the token) in the payload, as ADBC does.
    Handshake,
    /// `ListFlights`: observed as whether `persons` is listed.
    ListFlights,
    /// `GetFlightInfo` of the path descriptor `[persons]`.
    GetFlightInfo,
    /// `GetFlightInfo` of a Flight SQL statement (`CommandStatementQuery`).
    GetFlightInfoSql,
    /// `PollFlightInfo` of `[persons]`.
    PollFlightInfo,
    /// `GetSchema` of `[persons]`.
    GetSchema,
    /// `DoGet` of a JSON ticket fetching one record by key.
    DoGetKeys,
    /// `DoGet` of a JSON change ticket (`since` the current version).
    DoGetChanges,
    /// `DoGet` of a Flight SQL ticket (`TicketStatementQuery`).
    DoGetSql,
    /// `DoPut` to `[persons]` of an upload that announces no row count.
    DoPut,
    /// `DoAction` of an action type, with the body [`action_body`] makes for it. Every type
    /// `ListActions` offers must have a row (checked), and an unknown one has one too.
    DoAction(&'static str),
    /// `ListActions`.
    ListActions,
    /// `DoExchange`.
    DoExchange,
}

/// One call.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// A REST call. `path` is the OpenAPI path with each parameter written
    /// `{name=fixture}`: the template is the path with `=fixture` left out, the request
    /// goes to the path with the fixture's value (see [`Fixtures`]).
    Rest {
        method: &'static str,
        path: &'static str,
        body: Body,
    },
    /// A Flight RPC.
    Flight(Rpc),
}

/// The expected outcome for each role.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// HTTP statuses.
    Http([u16; 7]),
    /// gRPC codes by name ([`code_name`]), or [`LISTED`] / [`UNLISTED`].
    Grpc([&'static str; 7]),
}

#[derive(Debug, Clone, Copy)]
struct Row {
    call: Call,
    expect: Expect,
}

const fn get(path: &'static str, expect: [u16; 7]) -> Row {
    Row {
        call: Call::Rest {
            method: "GET",
            path,
            body: Body::None,
        },
        expect: Expect::Http(expect),
    }
}

const fn post(path: &'static str, body: Body, expect: [u16; 7]) -> Row {
    Row {
        call: Call::Rest {
            method: "POST",
            path,
            body,
        },
        expect: Expect::Http(expect),
    }
}

const fn patch(path: &'static str, expect: [u16; 7]) -> Row {
    Row {
        call: Call::Rest {
            method: "PATCH",
            path,
            body: Body::BadJson,
        },
        expect: Expect::Http(expect),
    }
}

const fn put(path: &'static str, body: Body, expect: [u16; 7]) -> Row {
    Row {
        call: Call::Rest {
            method: "PUT",
            path,
            body,
        },
        expect: Expect::Http(expect),
    }
}

const fn delete(path: &'static str, expect: [u16; 7]) -> Row {
    Row {
        call: Call::Rest {
            method: "DELETE",
            path,
            body: Body::None,
        },
        expect: Expect::Http(expect),
    }
}

const fn rpc(rpc: Rpc, expect: [&'static str; 7]) -> Row {
    Row {
        call: Call::Flight(rpc),
        expect: Expect::Grpc(expect),
    }
}

const BAD: Body = Body::BadJson;

const OK: &str = "OK";
const UNAUTH: &str = "UNAUTHENTICATED";
const DENIED: &str = "PERMISSION_DENIED";
const INVALID: &str = "INVALID_ARGUMENT";
const UNIMPL: &str = "UNIMPLEMENTED";
const NOTFOUND: &str = "NOT_FOUND";
/// `ListFlights` answered, `persons` among the flights.
const LISTED: &str = "OK+persons";
/// `ListFlights` answered, `persons` not among the flights.
const UNLISTED: &str = "OK-persons";

/// Routes the OpenAPI document leaves out on purpose (method, path): the document itself.
// `/metrics` is Prometheus text for a scraper, documented in docs/operations.md.
const UNDOCUMENTED: &[(&str, &str)] = &[("GET", "/api/v1/openapi.json"), ("GET", "/metrics")];

/// The decisions. Cells: anonymous, citizen, consumer, provider, other org, owner, admin.
///
/// The rules behind them (docs/api.md, docs/security.md): the catalog and the organisation
/// directory are for every authenticated caller; register data only under an agreement
/// (consumer) or to the owner, never to citizens or admins without one; an entity of another
/// organisation answers 404, not 403; a role that may never call a route gets 403 whatever
/// the target; a role check that needs the body (the organisation a new dataset or system
/// is for) can only pass the role, so an owner of another organisation gets the body's 400.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    // ---- meta, who am I ---------------------------------------------------------- anon  citz  cons  prov  other owner admin
    get("/api/v1/health",                                                           [200,  200,  200,  200,  200,  200,  200]),
    get("/api/v1/openapi.json",                                                     [200,  200,  200,  200,  200,  200,  200]),
    get("/api/v1/ready",                                                            [200,  200,  200,  200,  200,  200,  200]),
    // Prometheus metrics: no token (a scraper has none); kept to the monitoring network.
    get("/metrics",                                                                 [200,  200,  200,  200,  200,  200,  200]),
    get("/api/v1/me",                                                               [401,  200,  200,  200,  200,  200,  200]),
    // ---- organisations and users: the directory is not secret; admins manage it
    get("/api/v1/organisations",                                                    [401,  200,  200,  200,  200,  200,  200]),
    post("/api/v1/organisations", BAD,                                              [401,  403,  403,  403,  403,  403,  400]),
    get("/api/v1/organisations/{code=owner_org}",                                   [401,  200,  200,  200,  200,  200,  200]),
    patch("/api/v1/organisations/{code=owner_org}",                                 [401,  403,  403,  403,  403,  403,  400]),
    // users: admins all, others their organisation's; citizens belong to none
    // (the code shows an organisation's users to its system tokens too; the docs do not say)
    get("/api/v1/users",                                                            [401,  403,  200,  200,  200,  200,  200]),
    post("/api/v1/users", BAD,                                                      [401,  403,  403,  403,  403,  403,  400]),
    // ---- systems and tokens: of the organisation, and admins
    get("/api/v1/systems",                                                          [401,  403,  200,  200,  200,  200,  200]),
    post("/api/v1/systems", BAD,                                                    [401,  403,  403,  400,  400,  400,  400]),
    get("/api/v1/systems/{id=provider_system}",                                     [401,  404,  404,  200,  404,  200,  200]),
    get("/api/v1/systems/{id=provider_system}/tokens",                              [401,  404,  404,  200,  404,  200,  200]),
    // quotas (docs/quotas.md): shown like the system; set by admins only, the role checked
    // before the body is read
    get("/api/v1/systems/{id=provider_system}/quotas",                              [401,  404,  404,  200,  404,  200,  200]),
    put("/api/v1/systems/{id=provider_system}/quotas", BAD,                         [401,  403,  403,  403,  403,  403,  400]),
    // a provider system's token: an owner of its organisation; never an admin
    post("/api/v1/systems/{id=provider_system}/tokens", BAD,                        [401,  404,  404,  400,  404,  400,  403]),
    // a consumer system's token: a person of its organisation; never a system token (its
    // own included), never an admin; over the API nobody is a person, so nobody
    post("/api/v1/systems/{id=consumer_system}/tokens", BAD,                        [401,  404,  403,  404,  404,  404,  403]),
    post("/api/v1/tokens", BAD,                                                     [401,  403,  403,  403,  403,  403,  400]),
    get("/api/v1/tokens/{id=spare_token}",                                          [401,  404,  404,  200,  404,  200,  200]),
    post("/api/v1/tokens/{id=spare_token}/revoke", BAD,                             [401,  404,  404,  400,  404,  400,  400]),
    // ---- datasets: metadata for everyone; data only under an agreement, or to the owner
    get("/api/v1/datasets",                                                         [401,  200,  200,  200,  200,  200,  200]),
    post("/api/v1/datasets", BAD,                                                   [401,  403,  403,  400,  400,  400,  400]),
    get("/api/v1/datasets/{name=dataset}",                                          [401,  200,  200,  200,  200,  200,  200]),
    patch("/api/v1/datasets/{name=dataset}",                                        [401,  403,  403,  400,  403,  400,  400]),
    // 403 naming the dataset, as docs/api.md and docs/flight.md say (the catalog names every
    // dataset to every caller anyway, so 403 leaks nothing)
    get("/api/v1/datasets/{name=dataset}/records?limit=1",                          [401,  403,  200,  200,  403,  200,  403]),
    get("/api/v1/datasets/{name=dataset}/records/{key=person_key}",                 [401,  403,  200,  200,  403,  200,  403]),
    // schema changes are filed by the owner only (admins review them)
    post("/api/v1/datasets/{name=dataset}/schema-changes", BAD,                     [401,  403,  403,  400,  403,  400,  403]),
    // ---- loads: owners of the dataset and admins
    post("/api/v1/datasets/{name=dataset}/loads", Body::NotParquet,                 [401,  403,  403,  415,  403,  415,  415]),
    get("/api/v1/datasets/{name=dataset}/loads",                                    [401,  403,  403,  200,  403,  200,  200]),
    get("/api/v1/loads/{id=load}",                                                  [401,  404,  404,  200,  404,  200,  200]),
    // ---- access requests: consumers file and withdraw, the owner decides (the `owner` role
    // of docs/api.md: a provider system's token, or an owner person's)
    get("/api/v1/requests",                                                         [401,  403,  200,  200,  200,  200,  200]),
    post("/api/v1/requests", BAD,                                                   [401,  403,  400,  403,  403,  403,  403]),
    get("/api/v1/requests/{id=pending_request}",                                    [401,  404,  200,  200,  404,  200,  200]),
    post("/api/v1/requests/{id=pending_request}/approve", BAD,                      [401,  404,  403,  400,  404,  400,  403]),
    post("/api/v1/requests/{id=pending_request}/refuse", BAD,                       [401,  404,  403,  400,  404,  400,  403]),
    post("/api/v1/requests/{id=pending_request}/withdraw", BAD,                     [401,  404,  400,  403,  404,  403,  403]),
    // ---- agreements: the parties and admins see them; the owner or an admin revokes
    get("/api/v1/agreements",                                                       [401,  403,  200,  200,  200,  200,  200]),
    get("/api/v1/agreements/{id=agreement}",                                        [401,  404,  200,  200,  404,  200,  200]),
    post("/api/v1/agreements/{id=agreement}/revoke", BAD,                           [401,  404,  403,  400,  404,  400,  400]),
    // ---- schema changes: owners (their datasets') and admins see them; admins decide
    get("/api/v1/schema-changes",                                                   [401,  403,  403,  200,  200,  200,  200]),
    get("/api/v1/schema-changes/{id=change}",                                       [401,  404,  404,  200,  404,  200,  200]),
    // no body: the target is applied already, so the admin's call is a 409
    post("/api/v1/schema-changes/{id=change}/accept", Body::None,                   [401,  403,  403,  403,  403,  403,  409]),
    post("/api/v1/schema-changes/{id=change}/reject", BAD,                          [401,  403,  403,  403,  403,  403,  400]),
    // ---- history: whoever sees the entity (a user's: admins and its organisation, whose
    // system tokens included: docs/api.md says "persons of its organisation", and over the API
    // an organisation acts only through its systems' tokens)
    get("/api/v1/{kind=requests}/{id=pending_request}/history",                     [401,  404,  200,  200,  404,  200,  200]),
    get("/api/v1/{kind=agreements}/{id=agreement}/history",                         [401,  404,  200,  200,  404,  200,  200]),
    get("/api/v1/{kind=schema_changes}/{id=change}/history",                        [401,  404,  404,  200,  404,  200,  200]),
    get("/api/v1/{kind=tokens}/{id=spare_token}/history",                           [401,  404,  404,  200,  404,  200,  200]),
    get("/api/v1/{kind=systems}/{id=provider_system}/history",                      [401,  404,  404,  200,  404,  200,  200]),
    get("/api/v1/{kind=users}/{id=owner_user}/history",                             [401,  404,  404,  200,  404,  200,  200]),
    // ---- the usage audit: systems report, the citizen reads theirs, owners and admins
    // read summaries and exports (owners of their own datasets only)
    post("/api/v1/usage-events", BAD,                                               [401,  403,  400,  400,  400,  400,  403]),
    get("/api/v1/me/usage",                                                         [401,  200,  403,  403,  403,  403,  403]),
    get("/api/v1/usage/summary?dataset=persons",                                    [401,  403,  403,  200,  403,  200,  200]),
    get("/api/v1/usage/records?dataset=persons&format=csv",                         [401,  403,  403,  200,  403,  200,  200]),
    // ---- MAP (grant management): its staff (persons of a grantor with MAP roles, with
    // personal tokens) and applicants (subject tokens); none of the columns is MAP staff, so
    // organisations' system tokens are refused, the citizen is an applicant (of nothing
    // here), the admin only registers grantors and staff. tests/map.rs covers the staff.
    post("/api/v1/map/grantors", BAD,                                               [401,  403,  403,  403,  403,  403,  400]),
    post("/api/v1/map/staff", BAD,                                                  [401,  403,  403,  403,  403,  403,  400]),
    get("/api/v1/map/staff",                                                        [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/map/programmes",                                                   [401,  200,  403,  403,  403,  403,  403]),
    post("/api/v1/map/programmes", BAD,                                             [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/map/programmes/{id=map_programme}",                                [401,  200,  403,  403,  403,  403,  403]),
    post("/api/v1/map/programmes/{id=map_programme}/scoresheet", BAD,               [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/map/programmes/{id=map_programme}/ranking",                        [401,  403,  403,  403,  403,  403,  403]),
    post("/api/v1/map/programmes/{id=map_programme}/decisions", BAD,                [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/map/applications",                                                 [401,  200,  403,  403,  403,  403,  403]),
    post("/api/v1/map/applications", BAD,                                           [401,  400,  403,  403,  403,  403,  403]),
    get("/api/v1/map/applications/{id=map_application}",                            [401,  404,  403,  403,  403,  403,  404]),
    patch("/api/v1/map/applications/{id=map_application}",                          [401,  404,  403,  403,  403,  403,  403]),
    post("/api/v1/map/applications/{id=map_application}/submit", Body::None,        [401,  404,  403,  403,  403,  403,  404]),
    post("/api/v1/map/applications/{id=map_application}/transitions", BAD,          [401,  404,  403,  403,  403,  403,  403]),
    get("/api/v1/map/applications/{id=map_application}/history",                    [401,  404,  403,  403,  403,  403,  404]),
    get("/api/v1/map/applications/{id=map_application}/access-log",                 [401,  404,  403,  403,  403,  403,  404]),
    get("/api/v1/map/undertakings/{registration_number=map_undertaking}/aid",       [401,  200,  403,  403,  403,  403,  403]),
    post("/api/v1/map/undertakings/{registration_number=map_undertaking}/aid", BAD, [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/map/undertakings/{registration_number=map_undertaking}/links",     [401,  403,  403,  403,  403,  403,  200]),
    post("/api/v1/map/undertakings/{registration_number=map_undertaking}/links", BAD, [401,  403,  403,  403,  403,  403,  400]),
    delete("/api/v1/map/undertakings/{registration_number=map_undertaking}/links/{member=map_undertaking}", [401,  403,  403,  403,  403,  403,  404]),
    get("/api/v1/map/regimes",                                                      [401,  200,  403,  403,  403,  403,  200]),
    put("/api/v1/map/regimes/{code=map_regime}", BAD,                               [401,  403,  403,  403,  403,  403,  400]),
    get("/api/v1/map/settings",                                                     [401,  200,  403,  403,  403,  403,  200]),
    put("/api/v1/map/settings", BAD,                                                [401,  403,  403,  403,  403,  403,  400]),
    get("/api/v1/map/retention",                                                    [401,  403,  403,  403,  403,  403,  403]),
    // ---- TAPIS: documents, rules and institutions are public reads; planners (persons of
    // a municipality with their own token, none of the columns) act; the admin keeps the
    // rules, institutions and planners; a coordination link is its own credential
    get("/api/v1/tapis/rules",                                                      [200,  200,  200,  200,  200,  200,  200]),
    patch("/api/v1/tapis/rules",                                                    [401,  403,  403,  403,  403,  403,  400]),
    get("/api/v1/tapis/institutions",                                               [200,  200,  200,  200,  200,  200,  200]),
    put("/api/v1/tapis/institutions/{code=tapis_institution}", BAD,                 [401,  403,  403,  403,  403,  403,  400]),
    post("/api/v1/tapis/planners", BAD,                                             [401,  403,  403,  403,  403,  403,  400]),
    get("/api/v1/tapis/documents",                                                  [200,  200,  200,  200,  200,  200,  200]),
    post("/api/v1/tapis/documents", BAD,                                            [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/tapis/documents/{id=tapis_document}",                              [200,  200,  200,  200,  200,  200,  200]),
    post("/api/v1/tapis/documents/{id=tapis_document}/stage", BAD,                  [401,  403,  403,  403,  403,  403,  403]),
    post("/api/v1/tapis/documents/{id=tapis_document}/territory", BAD,              [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/tapis/documents/{id=tapis_document}/history",                      [200,  200,  200,  200,  200,  200,  200]),
    get("/api/v1/tapis/documents/{id=tapis_document}/institutions",                 [200,  200,  200,  200,  200,  200,  200]),
    get("/api/v1/tapis/documents/{id=tapis_document}/coordination-requests",        [401,  403,  403,  403,  403,  403,  403]),
    post("/api/v1/tapis/documents/{id=tapis_document}/coordination-requests", BAD,  [401,  403,  403,  403,  403,  403,  403]),
    post("/api/v1/tapis/documents/{id=tapis_document}/coordination-requests/{request=tapis_request}/extend", BAD, [401, 403, 403, 403, 403, 403, 403]),
    get("/api/v1/tapis/documents/{id=tapis_document}/versions",                     [200,  200,  200,  200,  200,  200,  200]),
    post("/api/v1/tapis/documents/{id=tapis_document}/versions", BAD,               [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/tapis/documents/{id=tapis_document}/versions/{version=tapis_version}", [200, 200, 200, 200, 200, 200, 200]),
    get("/api/v1/tapis/documents/{id=tapis_document}/consultations",                [200,  200,  200,  200,  200,  200,  200]),
    post("/api/v1/tapis/documents/{id=tapis_document}/consultations", BAD,          [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/tapis/responses/{token=tapis_token}",                              [404,  404,  404,  404,  404,  404,  404]),
    post("/api/v1/tapis/responses/{token=tapis_token}", BAD,                        [404,  404,  404,  404,  404,  404,  404]),
    // Files of versions: the planner adds them (before the body is read, everyone else is
    // refused), everyone reads them; comments come from citizens, the planner works on them
    // (the targets do not exist: the role is checked first), a receipt is its author's.
    post("/api/v1/tapis/documents/{id=tapis_document}/versions/{version=tapis_version}/files/{name=tapis_file}", BAD, [401, 403, 403, 403, 403, 403, 403]),
    get("/api/v1/tapis/documents/{id=tapis_document}/versions/{version=tapis_version}/files/{name=tapis_file}", [404, 404, 404, 404, 404, 404, 404]),
    get("/api/v1/tapis/consultations/{cid=tapis_missing}/comments",                [401,  403,  403,  403,  403,  403,  403]),
    post("/api/v1/tapis/consultations/{cid=tapis_missing}/comments", BAD,          [401,  400,  403,  403,  403,  403,  403]),
    get("/api/v1/tapis/consultations/{cid=tapis_missing}/report",                  [401,  403,  403,  403,  403,  403,  404]),
    patch("/api/v1/tapis/comments/{id=tapis_missing}",                             [401,  403,  403,  403,  403,  403,  403]),
    post("/api/v1/tapis/comments/{id=tapis_missing}/split", BAD,                   [401,  403,  403,  403,  403,  403,  403]),
    post("/api/v1/tapis/comments/{id=tapis_missing}/answer", BAD,                  [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/tapis/receipts/{rid=tapis_missing}",                              [401,  404,  403,  403,  403,  403,  403]),
    get("/api/v1/tapis/answer-blocks",                                              [401,  403,  403,  403,  403,  403,  403]),
    put("/api/v1/tapis/answer-blocks/{code=tapis_block}", BAD,                      [401,  403,  403,  403,  403,  403,  403]),
    // Help and FAQ: search, articles and an anonymous vote are public (a bad vote body is 400
    // for everyone); an admin writes and deletes articles (the target of the deletion does
    // not exist: nothing changes) and reads the votes
    get("/api/v1/tapis/help",                                                       [200,  200,  200,  200,  200,  200,  200]),
    get("/api/v1/tapis/help/stats",                                                 [401,  403,  403,  403,  403,  403,  200]),
    get("/api/v1/tapis/help/{id=tapis_help}",                                       [200,  200,  200,  200,  200,  200,  200]),
    put("/api/v1/tapis/help/{id=tapis_help}", BAD,                                  [401,  403,  403,  403,  403,  403,  400]),
    delete("/api/v1/tapis/help/{id=tapis_help_missing}",                            [401,  403,  403,  403,  403,  403,  404]),
    post("/api/v1/tapis/help/{id=tapis_help}/feedback", BAD,                        [400,  400,  400,  400,  400,  400,  400]),
    // Owners from the registers: the document's planners and admins (the fixture has no
    // territory yet: 409; no comparison with the cadastre yet: 404); the admin registers a
    // municipality's TAPIS system.
    get("/api/v1/tapis/documents/{id=tapis_document}/parcels",                      [401,  403,  403,  403,  403,  403,  409]),
    get("/api/v1/tapis/documents/{id=tapis_document}/cadastre",                     [401,  403,  403,  403,  403,  403,  404]),
    put("/api/v1/tapis/systems/{organisation=owner_org}", BAD,                      [401,  403,  403,  403,  403,  403,  400]),
    // ---- the working-day calendar: public; an admin keeps its entries
    get("/api/v1/calendar",                                                         [200,  200,  200,  200,  200,  200,  200]),
    put("/api/v1/calendar/days/{date=calendar_day}", BAD,                           [401,  403,  403,  403,  403,  403,  400]),
    delete("/api/v1/calendar/days/{date=calendar_day}",                             [401,  403,  403,  403,  403,  403,  404]),
    // ---- e-mail: a person's own address (the citizen's subject token is a person's;
    // systems and the admin have none); the outbox is the admin's
    get("/api/v1/me/email",                                                         [401,  200,  403,  403,  403,  403,  403]),
    get("/api/v1/me/inbox",                                                         [401,  200,  403,  403,  403,  403,  403]),
    put("/api/v1/me/email", BAD,                                                    [401,  400,  403,  403,  403,  403,  403]),
    get("/api/v1/outbox",                                                           [401,  403,  403,  403,  403,  403,  200]),
    get("/api/v1/map/inbox",                                                        [401,  200,  403,  403,  403,  403,  403]),
    get("/api/v1/map/exports/{kind=map_export}",                                    [401,  403,  403,  403,  403,  403,  403]),
    get("/api/v1/map/reports/due",                                                  [401,  200,  403,  403,  403,  403,  403]),
    // ---- Arrow Flight and Flight SQL ------------------------------------------------------------------------
    rpc(Rpc::Handshake,                                                             [UNAUTH, OK,       OK,     OK,     OK,       OK,     OK]),
    rpc(Rpc::ListFlights,                                                           [UNAUTH, UNLISTED, LISTED, LISTED, UNLISTED, LISTED, UNLISTED]),
    rpc(Rpc::GetFlightInfo,                                                         [UNAUTH, DENIED,   OK,     OK,     DENIED,   OK,     DENIED]),
    // a table nobody granted does not exist in the caller's catalog: the SQL is invalid
    rpc(Rpc::GetFlightInfoSql,                                                      [UNAUTH, INVALID,  OK,     OK,     INVALID,  OK,     INVALID]),
    rpc(Rpc::PollFlightInfo,                                                        [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
    rpc(Rpc::GetSchema,                                                             [UNAUTH, DENIED,   OK,     OK,     DENIED,   OK,     DENIED]),
    rpc(Rpc::DoGetKeys,                                                             [UNAUTH, DENIED,   OK,     OK,     DENIED,   OK,     DENIED]),
    rpc(Rpc::DoGetChanges,                                                          [UNAUTH, DENIED,   OK,     OK,     DENIED,   OK,     DENIED]),
    rpc(Rpc::DoGetSql,                                                              [UNAUTH, INVALID,  OK,     OK,     INVALID,  OK,     INVALID]),
    // uploads: owners of the dataset and admins (then refused: no row count announced)
    rpc(Rpc::DoPut,                                                                 [UNAUTH, DENIED,   DENIED, INVALID, DENIED,  INVALID, INVALID]),
    // actions: every type ListActions offers, and an unknown one
    rpc(Rpc::DoAction("dagr.definition"),                                           [UNAUTH, DENIED,   DENIED, OK,     DENIED,   OK,     OK]),
    rpc(Rpc::DoAction("CreatePreparedStatement"),                                   [UNAUTH, INVALID,  OK,     OK,     INVALID,  OK,     INVALID]),
    // a handle is its maker's: anyone else's (here nobody's) is not found
    rpc(Rpc::DoAction("ClosePreparedStatement"),                                    [UNAUTH, NOTFOUND, NOTFOUND, NOTFOUND, NOTFOUND, NOTFOUND, NOTFOUND]),
    rpc(Rpc::DoAction("CreatePreparedSubstraitPlan"),                               [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
    rpc(Rpc::DoAction("BeginTransaction"),                                          [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
    rpc(Rpc::DoAction("EndTransaction"),                                            [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
    rpc(Rpc::DoAction("BeginSavepoint"),                                            [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
    rpc(Rpc::DoAction("EndSavepoint"),                                              [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
    rpc(Rpc::DoAction("CancelQuery"),                                               [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
    rpc(Rpc::DoAction("dagr.no-such-action"),                                       [UNAUTH, INVALID,  INVALID, INVALID, INVALID, INVALID, INVALID]),
    rpc(Rpc::ListActions,                                                           [UNAUTH, OK,       OK,     OK,     OK,       OK,     OK]),
    rpc(Rpc::DoExchange,                                                            [UNAUTH, UNIMPL,   UNIMPL, UNIMPL, UNIMPL,   UNIMPL, UNIMPL]),
];

/// `{name=fixture}` → `{name}`, and without the query string: the OpenAPI path of a row.
fn template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').expect("a closed parameter");
        out.push_str(&rest[..open]);
        let param = &rest[open + 1..close];
        let name = param.split('=').next().unwrap_or(param);
        write!(out, "{{{name}}}").unwrap();
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Real ids and names of the demo the paths point at.
struct Fixtures(HashMap<&'static str, String>);

impl Fixtures {
    /// `{name=fixture}` → the fixture's value.
    fn path(&self, path: &str) -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(open) = rest.find('{') {
            let close = open + rest[open..].find('}').expect("a closed parameter");
            out.push_str(&rest[..open]);
            let param = &rest[open + 1..close];
            let (_, fixture) = param
                .split_once('=')
                .unwrap_or_else(|| panic!("`{{{param}}}` in `{path}` names no fixture"));
            let value = self
                .0
                .get(fixture)
                .unwrap_or_else(|| panic!("no fixture `{fixture}` (in `{path}`)"));
            out.push_str(value);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no fixture `{name}`"))
    }
}

/// What one cell observed: the status (or code) and what the server said.
#[derive(Debug, Clone)]
struct Observed {
    got: String,
    detail: String,
}

// ---- REST -----------------------------------------------------------------------------

async fn call_rest(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Body,
    token: Option<&str>,
) -> Observed {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http
        .request(method, format!("{base}{path}"))
        .header("x-dagr-purpose", PURPOSE);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match body {
        Body::None => req,
        Body::BadJson => req
            .header("content-type", "application/json")
            .body("{, not JSON"),
        Body::NotParquet => req
            .header("content-type", "text/plain")
            .body("not a Parquet file"),
    };
    let r = req.send().await.expect("the server answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Observed {
        got: status.to_string(),
        detail,
    }
}

// ---- Flight ---------------------------------------------------------------------------

/// The name of a gRPC code, as in the gRPC specification.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A protobuf varint.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A length-delimited protobuf field (strings, bytes, messages).
fn field(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint((number << 3) | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A Flight SQL message wrapped in `google.protobuf.Any`, encoded (`type_url` = 1,
/// `value` = 2), as Flight SQL sends commands in descriptors, tickets and actions.
fn any_bytes(message: &impl ProstMessageExt) -> Vec<u8> {
    let any: Any = message.as_any();
    let mut out = Vec::new();
    field(1, any.type_url.as_bytes(), &mut out);
    field(2, &any.value, &mut out);
    out
}

/// `arrow.flight.protocol.BasicAuth` (`username` = 2, `password` = 3), encoded.
fn basic_auth(username: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::new();
    field(2, username.as_bytes(), &mut out);
    field(3, password.as_bytes(), &mut out);
    out
}

/// A request with the caller's bearer token (none for the anonymous caller) and the
/// test's purpose.
fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r.metadata_mut()
        .insert("x-dagr-purpose", PURPOSE.parse().unwrap());
    r
}

/// Every message of a streamed answer, or the first error (of the call or of the stream).
async fn drain<T>(
    answer: Result<tonic::Response<tonic::Streaming<T>>, Status>,
) -> Result<Vec<T>, Status> {
    let mut stream = answer?.into_inner();
    let mut all = Vec::new();
    while let Some(m) = stream.message().await? {
        all.push(m);
    }
    Ok(all)
}

fn observed<T>(r: Result<T, Status>) -> Observed {
    match r {
        Ok(_) => Observed {
            got: OK.to_owned(),
            detail: String::new(),
        },
        Err(s) => Observed {
            got: code_name(s.code()).to_owned(),
            detail: s.message().to_owned(),
        },
    }
}

/// The body of a `DoAction` of type `kind`: the request message the action takes, so that
/// the call reaches the action's handler (`dagr.definition`: the dataset's name).
fn action_body(kind: &str) -> Vec<u8> {
    match kind {
        "dagr.definition" => b"persons".to_vec(),
        "CreatePreparedStatement" => any_bytes(&ActionCreatePreparedStatementRequest {
            query: "SELECT given_name FROM persons WHERE personal_code = ?".to_owned(),
            transaction_id: None,
        }),
        // A handle nobody holds.
        "ClosePreparedStatement" => any_bytes(&ActionClosePreparedStatementRequest {
            prepared_statement_handle: b"role matrix".to_vec().into(),
        }),
        "CreatePreparedSubstraitPlan" => {
            any_bytes(&ActionCreatePreparedSubstraitPlanRequest::default())
        }
        "BeginTransaction" => any_bytes(&ActionBeginTransactionRequest::default()),
        "EndTransaction" => any_bytes(&ActionEndTransactionRequest::default()),
        "BeginSavepoint" => any_bytes(&ActionBeginSavepointRequest::default()),
        "EndSavepoint" => any_bytes(&ActionEndSavepointRequest::default()),
        "CancelQuery" => any_bytes(&ActionCancelQueryRequest::default()),
        _ => Vec::new(),
    }
}

fn persons_path() -> FlightDescriptor {
    FlightDescriptor::new_path(vec!["persons".to_owned()])
}

async fn call_flight(channel: Channel, rpc: Rpc, token: Option<&str>, fx: &Fixtures) -> Observed {
    let mut c = FlightServiceClient::new(channel);
    let key = fx.get("person_key");
    let sql = format!("SELECT given_name FROM persons WHERE personal_code = '{key}'");
    match rpc {
        Rpc::Handshake => {
            // The token goes in the payload, so the anonymous caller sends an empty one.
            let payload = token.map(|t| basic_auth("token", t)).unwrap_or_default();
            let hello = HandshakeRequest {
                protocol_version: 0,
                payload: payload.into(),
            };
            let mut r = tonic::Request::new(futures::stream::iter(vec![hello]));
            r.metadata_mut()
                .insert("x-dagr-purpose", PURPOSE.parse().unwrap());
            observed(drain(c.handshake(r).await).await)
        }
        Rpc::ListFlights => {
            match drain(c.list_flights(request(Criteria::default(), token)).await).await {
                Ok(infos) => {
                    let listed = infos.iter().any(|i| {
                        i.flight_descriptor
                            .as_ref()
                            .is_some_and(|d| d.path == ["persons"])
                    });
                    Observed {
                        got: if listed { LISTED } else { UNLISTED }.to_owned(),
                        detail: format!("{} flights", infos.len()),
                    }
                }
                Err(s) => observed::<()>(Err(s)),
            }
        }
        Rpc::GetFlightInfo => observed(c.get_flight_info(request(persons_path(), token)).await),
        Rpc::GetFlightInfoSql => {
            let cmd = CommandStatementQuery {
                query: sql,
                transaction_id: None,
            };
            let descriptor = FlightDescriptor::new_cmd(any_bytes(&cmd));
            observed(c.get_flight_info(request(descriptor, token)).await)
        }
        Rpc::PollFlightInfo => observed(c.poll_flight_info(request(persons_path(), token)).await),
        Rpc::GetSchema => observed(c.get_schema(request(persons_path(), token)).await),
        Rpc::DoGetKeys => {
            let ticket = json!({"dataset": "persons", "columns": ["personal_code"], "keys": [key]});
            let ticket = Ticket::new(ticket.to_string());
            observed(drain(c.do_get(request(ticket, token)).await).await)
        }
        Rpc::DoGetChanges => {
            let since: u64 = fx.get("persons_version").parse().unwrap();
            let ticket = Ticket::new(json!({"dataset": "persons", "since": since}).to_string());
            observed(drain(c.do_get(request(ticket, token)).await).await)
        }
        Rpc::DoGetSql => {
            let ticket = TicketStatementQuery {
                statement_handle: sql.into_bytes().into(),
            };
            let ticket = Ticket::new(any_bytes(&ticket));
            observed(drain(c.do_get(request(ticket, token)).await).await)
        }
        Rpc::DoPut => {
            // The descriptor only: no data, no row count, no end marker.
            let first = FlightData {
                flight_descriptor: Some(persons_path()),
                ..Default::default()
            };
            let upload = request(futures::stream::iter(vec![first]), token);
            observed(drain(c.do_put(upload).await).await)
        }
        Rpc::DoAction(kind) => {
            let action = Action::new(kind, action_body(kind));
            observed(drain(c.do_action(request(action, token)).await).await)
        }
        Rpc::ListActions => observed(drain(c.list_actions(request(Empty {}, token)).await).await),
        Rpc::DoExchange => {
            let first = FlightData {
                flight_descriptor: Some(persons_path()),
                ..Default::default()
            };
            let exchange = request(futures::stream::iter(vec![first]), token);
            observed(drain(c.do_exchange(exchange).await).await)
        }
    }
}

// ---- the persons' credentials, through the portal ---------------------------------------

/// Percent-encode a form field.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

/// The `value` of the first `<input ... name="NAME" ... value="...">` of a page.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + 7;
    let rest = &tag[v..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// A browser of the portal: cookies kept, no redirect followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, mut req: reqwest::RequestBuilder) -> (u16, String) {
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("cookie", jar.join("; "));
        }
        let r = req.send().await.expect("the portal answers");
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            if let Some((k, val)) = v.split(';').next().and_then(|p| p.split_once('=')) {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect();
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        self.send(req).await
    }
}

/// Sign in to the portal as the person `login` and issue a token for their organisation's
/// system `system` (the portal's form, as a person does it); the token's secret.
async fn person_token(base: &str, login: &str, password: &str, system: &str) -> String {
    let mut b = Browser::new(base);
    let (_, page) = b.get("/login").await;
    let csrf = input_value(&page, "csrf").expect("a CSRF token on the sign-in page");
    let (status, page) = b
        .post(
            "/login",
            &[("csrf", &csrf), ("login", login), ("password", password)],
        )
        .await;
    assert!(
        b.cookies.contains_key("dagr_session"),
        "{login} could not sign in to the portal: {status} {page}"
    );
    let (_, page) = b.get(&format!("/systems/{system}")).await;
    let csrf = input_value(&page, "csrf").expect("a CSRF token on the system's page");
    let (status, page) = b
        .post(
            &format!("/systems/{system}/tokens"),
            &[("csrf", &csrf), ("label", "role matrix")],
        )
        .await;
    let secret = page.find("dagr_").and_then(|at| {
        let s = page.get(at..at + 5 + 64)?;
        s[5..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| s.to_owned())
    });
    secret.unwrap_or_else(|| {
        panic!("{login} could not issue a token for system {system} in the portal: {status} {page}")
    })
}

// ---- the test ---------------------------------------------------------------------------

/// `(METHOD, path)` of every operation of the OpenAPI document.
fn openapi_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"]
        .as_object()
        .expect("paths in the OpenAPI document")
    {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// `(METHOD, template)` of every REST row.
fn rest_rows() -> BTreeSet<(String, String)> {
    MATRIX
        .iter()
        .filter_map(|r| match r.call {
            Call::Rest { method, path, .. } => Some((method.to_owned(), template(path))),
            Call::Flight(_) => None,
        })
        .collect()
}

fn difference(
    what: &str,
    a: &BTreeSet<(String, String)>,
    b: &BTreeSet<(String, String)>,
) -> Vec<String> {
    a.difference(b)
        .map(|(m, p)| format!("{what}: {m} {p}"))
        .collect()
}

/// Make what the paths point at, and return it with the seven callers' tokens.
async fn fixtures(server: &Server, creds: &Value) -> (Fixtures, [Option<String>; 7]) {
    let base = &server.base;
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let citizen = creds["subjects"][0]["token"].as_str().unwrap().to_owned();
    let person_key = creds["subjects"][0]["personal_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let consumer = system_token(creds, "BANKA", "consumer");
    let provider = system_token(creds, "PMLP", "provider");
    let system_of = |org: &str, role: &str| -> String {
        creds["systems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["organisation"] == org && s["role"] == role)
            .unwrap_or_else(|| panic!("a {role} system of {org} in the demo"))["system_id"]
            .to_string()
    };
    let user = |login: &str| -> &Value {
        creds["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["login"] == login)
            .unwrap_or_else(|| panic!("the demo user {login}"))
    };
    let provider_system = system_of("PMLP", "provider");
    let consumer_system = system_of("BANKA", "consumer");

    // The persons' tokens, issued by them in the portal.
    let owner_user = user("pmlp.owner");
    let owner = person_token(
        base,
        "pmlp.owner",
        owner_user["password"].as_str().unwrap(),
        &provider_system,
    )
    .await;
    let other_user = user("vzd.owner");
    let other = person_token(
        base,
        "vzd.owner",
        other_user["password"].as_str().unwrap(),
        &system_of("VZD", "provider"),
    )
    .await;

    // A spare token of PMLP's provider system: the target of the token routes (so that no
    // column's own token is one).
    let (status, _, spare) = post_auth(
        &format!("{base}/api/v1/systems/{provider_system}/tokens"),
        &provider,
        &json!({"label": "role matrix target"}),
    )
    .await;
    assert_eq!(status, 201, "a spare token: {spare}");

    // A pending request of BANKA for PMLP's `persons`.
    let valid_to = (chrono::Utc::now() + chrono::Duration::days(365))
        .format("%Y-%m-%d")
        .to_string();
    let (status, _, pending) = post_auth(
        &format!("{base}/api/v1/requests"),
        &consumer,
        &json!({"dataset": "persons", "attributes": ["sex"], "purpose": "role matrix",
                "legal_basis": "a test", "systems": [consumer_system.parse::<i64>().unwrap()],
                "valid_to": valid_to}),
    )
    .await;
    assert_eq!(status, 201, "a pending request: {pending}");

    // An applied schema change of `persons`: its description, which breaks nothing.
    let mut c = FlightServiceClient::new(common::flight_channel(server).await);
    let definition = drain(
        c.do_action(request(
            Action::new("dagr.definition", "persons"),
            Some(&provider),
        ))
        .await,
    )
    .await
    .expect("the owner reads the definition");
    let mut definition: Value = serde_json::from_slice(&definition[0].body).unwrap();
    definition["description"] = json!("Iedzīvotāju reģistrs (role matrix)");
    let (status, _, change) = post_auth(
        &format!("{base}/api/v1/datasets/persons/schema-changes"),
        &provider,
        &json!({ "definition": definition }),
    )
    .await;
    assert_eq!(status, 201, "a schema change: {change}");
    assert_eq!(change["status"], "applied", "{change}");

    let agreement = creds["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["consumer_organisation"] == "BANKA" && a["dataset"] == "persons")
        .expect("BANKA's agreement on persons")["id"]
        .to_string();
    let (status, _, loads) =
        get_auth(&format!("{base}/api/v1/datasets/persons/loads"), &admin).await;
    assert_eq!(status, 200, "{loads}");
    let load = loads[0]["id"].to_string();
    let (status, _, dataset) = get_auth(&format!("{base}/api/v1/datasets/persons"), &admin).await;
    assert_eq!(status, 200, "{dataset}");

    // MAP: an application of the second demo applicant, in the open programme.
    let map = &creds["map"];
    let (status, _, application) = post_auth(
        &format!("{base}/api/v1/map/applications"),
        map["applicants"][1]["token"].as_str().expect("MAP demo applicants"),
        &json!({"programme": map["programmes"]["open"], "title": "role matrix",
                "registration_number": map["applicants"][1]["companies"][0], "requested_amount": 1000}),
    )
    .await;
    assert_eq!(status, 201, "a MAP application: {application}");

    // TAPIS: a document of the demo planner, with a request to an institution.
    let planner = creds["tapis"]["planner"]["token"]
        .as_str()
        .expect("the TAPIS demo planner");
    let (status, _, document) = post_auth(
        &format!("{base}/api/v1/tapis/documents"),
        planner,
        &json!({"type": "local_plan", "title": "role matrix"}),
    )
    .await;
    assert_eq!(status, 201, "a TAPIS document: {document}");
    let (status, _, request) = post_auth(
        &format!(
            "{base}/api/v1/tapis/documents/{}/coordination-requests",
            document["id"]
        ),
        planner,
        &json!({"institution": "VVD", "kind": "conditions"}),
    )
    .await;
    assert_eq!(status, 201, "a TAPIS request: {request}");
    let (status, _, version) = post_auth(
        &format!("{base}/api/v1/tapis/documents/{}/versions", document["id"]),
        planner,
        &json!({"label": "1.0", "summary": "s", "paragraphs": [{"id": "p1", "text": "t"}]}),
    )
    .await;
    assert_eq!(status, 201, "a TAPIS version: {version}");

    let mut fx: HashMap<&'static str, String> = HashMap::new();
    fx.insert("tapis_document", document["id"].to_string());
    fx.insert("tapis_request", request["id"].to_string());
    fx.insert("tapis_version", version["id"].to_string());
    fx.insert("tapis_institution", "VVD".into());
    fx.insert("tapis_token", "1.2.not-a-signature".into());
    fx.insert("tapis_missing", "999999999".into());
    fx.insert("tapis_file", "plan.pdf".into());
    fx.insert("tapis_block", "height".into());
    fx.insert("tapis_help", "faq-overdue-en".into());
    fx.insert("tapis_help_missing", "no-such-article".into());
    fx.insert("map_programme", map["programmes"]["open"].to_string());
    fx.insert("map_application", application["id"].to_string());
    fx.insert(
        "map_undertaking",
        map["applicants"][0]["companies"][0]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    fx.insert("map_export", "payments".into());
    fx.insert("calendar_day", "2026-12-19".into());
    fx.insert("map_regime", "de_minimis".into());
    fx.insert("owner_org", "PMLP".into());
    fx.insert("dataset", "persons".into());
    fx.insert("person_key", person_key);
    fx.insert("persons_version", dataset["version"].to_string());
    fx.insert("provider_system", provider_system);
    fx.insert("consumer_system", consumer_system);
    fx.insert("spare_token", spare["token"]["id"].to_string());
    fx.insert("owner_user", owner_user["id"].to_string());
    fx.insert("pending_request", pending["id"].to_string());
    fx.insert("agreement", agreement);
    fx.insert("change", change["id"].to_string());
    fx.insert("load", load);
    // The kinds of `/{kind}/{id}/history`.
    for kind in ["requests", "agreements", "tokens", "systems", "users"] {
        fx.insert(kind, kind.into());
    }
    fx.insert("schema_changes", "schema-changes".into());
    let tokens = [
        None,
        Some(citizen),
        Some(consumer),
        Some(provider),
        Some(other),
        Some(owner),
        Some(admin),
    ];
    (Fixtures(fx), tokens)
}

fn row_name(row: &Row) -> String {
    match row.call {
        Call::Rest { method, path, .. } => format!("{method} {}", template(path)),
        Call::Flight(Rpc::DoAction(kind)) => format!("Flight DoAction {kind}"),
        Call::Flight(rpc) => format!("Flight {rpc:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_the_decided_status_on_every_route() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, DEMO_ROWS, &[]);
    let creds = credentials(&data);
    let base = server.base.clone();
    let (fx, tokens) = fixtures(&server, &creds).await;

    // The table has a row for exactly the routes the server documents.
    let (status, _, doc) = common::get(&format!("{base}/api/v1/openapi.json")).await;
    assert_eq!(status, 200);
    let documented = openapi_operations(&doc);
    let mut rows = rest_rows();
    for (m, p) in UNDOCUMENTED {
        assert!(
            rows.remove(&((*m).to_owned(), (*p).to_owned())),
            "the undocumented route {m} {p} has no row"
        );
    }
    let mut coverage = difference(
        "in the OpenAPI document, without a row in MATRIX",
        &documented,
        &rows,
    );
    coverage.extend(difference(
        "a row in MATRIX, not in the OpenAPI document (add it to UNDOCUMENTED if on purpose)",
        &rows,
        &documented,
    ));

    // ... and for every action type the server offers.
    let mut c = FlightServiceClient::new(common::flight_channel(&server).await);
    let offered: BTreeSet<String> = drain(
        c.list_actions(request(Empty {}, tokens[6].as_deref()))
            .await,
    )
    .await
    .expect("ListActions")
    .into_iter()
    .map(|a| a.r#type)
    .collect();
    let decided: BTreeSet<String> = MATRIX
        .iter()
        .filter_map(|r| match r.call {
            Call::Flight(Rpc::DoAction(kind)) => Some(kind.to_owned()),
            _ => None,
        })
        .collect();
    for kind in offered.difference(&decided) {
        coverage.push(format!(
            "an action ListActions offers, without a DoAction row in MATRIX: {kind}"
        ));
    }

    // Every cell.
    let http = reqwest::Client::new();
    let flight = common::flight_channel(&server).await;
    let mut observed: Vec<Vec<Observed>> = Vec::new();
    for row in MATRIX {
        let cells = tokens.iter().map(|token| {
            let token = token.as_deref();
            let (http, flight, fx, base) = (&http, flight.clone(), &fx, &base);
            async move {
                match row.call {
                    Call::Rest { method, path, body } => {
                        call_rest(http, base, method, &fx.path(path), body, token).await
                    }
                    Call::Flight(rpc) => call_flight(flight, rpc, token, fx).await,
                }
            }
        });
        observed.push(futures::future::join_all(cells).await);
    }

    // The whole matrix, each mismatch marked `got≠expected`.
    let mut table = String::new();
    let mut mismatches = Vec::new();
    let header = format!("{:<58}{}", "", ROLES.map(|r| format!("{r:<22}")).join(""));
    writeln!(table, "{}", header.trim_end()).unwrap();
    for (row, cells) in MATRIX.iter().zip(&observed) {
        let expected: Vec<String> = match row.expect {
            Expect::Http(e) => e.iter().map(u16::to_string).collect(),
            Expect::Grpc(e) => e.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut line = format!("{:<58}", row_name(row));
        for (i, (cell, want)) in cells.iter().zip(&expected).enumerate() {
            if &cell.got == want {
                write!(line, "{:<22}", cell.got).unwrap();
            } else {
                write!(line, "{:<22}", format!("{}≠{want} ✗", cell.got)).unwrap();
                mismatches.push(format!(
                    "{} as {}: got {}, expected {want} ({})",
                    row_name(row),
                    ROLES[i],
                    cell.got,
                    cell.detail
                ));
            }
        }
        writeln!(table, "{}", line.trim_end()).unwrap();
    }
    let rest = MATRIX
        .iter()
        .filter(|r| matches!(r.call, Call::Rest { .. }))
        .count();
    eprintln!(
        "role matrix: {rest} REST rows, {} Flight rows, {} cells in {:.1?}",
        MATRIX.len() - rest,
        MATRIX.len() * ROLES.len(),
        started.elapsed()
    );
    if !mismatches.is_empty() || !coverage.is_empty() {
        let mut report = format!("the role matrix does not hold:\n{table}");
        if !mismatches.is_empty() {
            write!(
                report,
                "\n{} cells differ from their decision:\n  {}\n",
                mismatches.len(),
                mismatches.join("\n  ")
            )
            .unwrap();
        }
        if !coverage.is_empty() {
            write!(
                report,
                "\nroutes and rows that do not match:\n  {}\n",
                coverage.join("\n  ")
            )
            .unwrap();
        }
        panic!("{report}");
    }
}

// ---- the router's routes ------------------------------------------------------------------

/// Every `.route("PATH", METHODS)` of the router's sources (`admin-api/src`), as
/// `(METHOD, PATH)`. A method router is a call of `get(`, `post(`, ... anywhere in the
/// `.route(...)` call (chained, or merged as in the load routes); `any(` counts as `ANY`,
/// which no row can match.
fn router_routes() -> BTreeSet<(String, String)> {
    let mut files = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("admin-api/src")];
    let mut out = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for construct in [".nest(", ".nest_service(", ".route_service("] {
            assert!(
                !src.contains(construct),
                "{} uses `{construct}`: teach router_routes() to read it",
                path.display()
            );
        }
        let mut rest = src.as_str();
        while let Some(at) = rest.find(".route(") {
            let call = &rest[at + ".route(".len()..];
            // The call's arguments: up to the matching parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (i, ch) in call.char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &call[..end];
            let open = args.find('"').expect("a route path literal") + 1;
            let route = &args[open..open + args[open..].find('"').unwrap()];
            let bytes = args.as_bytes();
            for method in [
                "get", "post", "put", "patch", "delete", "head", "options", "trace", "any",
            ] {
                let needle = format!("{method}(");
                let mut from = 0;
                while let Some(i) = args[from..].find(&needle) {
                    let i = from + i;
                    let before = i.checked_sub(1).map(|j| bytes[j]);
                    if before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
                    {
                        out.insert((method.to_uppercase(), route.to_owned()));
                    }
                    from = i + needle.len();
                }
            }
            rest = &call[end..];
        }
    }
    out
}

/// A route added to the router without an OpenAPI annotation has no row either: every
/// route of the router's sources is a REST row of [`MATRIX`], and every REST row a route.
#[test]
fn every_router_route_has_a_row() {
    let routes = router_routes();
    assert!(
        routes.len() > 40
            && routes
                .iter()
                .all(|(_, p)| p.starts_with("/api/v1/") || p == "/metrics"),
        "the scan of the router's sources went wrong: {routes:?}"
    );
    let rows = rest_rows();
    let mut wrong = difference(
        "a route of the router without a row in MATRIX",
        &routes,
        &rows,
    );
    wrong.extend(difference(
        "a row in MATRIX that is no route of the router",
        &rows,
        &routes,
    ));
    assert!(wrong.is_empty(), "\n  {}", wrong.join("\n  "));
}
