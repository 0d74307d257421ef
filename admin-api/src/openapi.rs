//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations and the
//! model types, served at `/api/v1/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::audit::api as usage;
use crate::loads::api as loads;
use crate::map::api as map;
use crate::{api, handlers};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "DAGR API",
        description = "Catalog, record lookups, governance (organisations, systems, \
            tokens, access requests, agreements, schema changes), snapshot loads and the usage \
            audit of DAGR. \
            Every call except `/health`, `/ready` and this document needs `Authorization: Bearer \
            <token>`. Errors are `application/problem+json` (RFC 9457). Lists are JSON arrays \
            paginated with `limit` and `after`; a full page carries `Link: <...>; rel=\"next\"`."
    ),
    paths(
        handlers::health,
        crate::ops::ready,
        handlers::list_datasets,
        handlers::get_dataset,
        handlers::head_records,
        handlers::get_record,
        api::me,
        api::create_organisation,
        api::list_organisations,
        api::get_organisation,
        api::update_organisation,
        api::create_user,
        api::list_users,
        api::create_system,
        api::list_systems,
        api::get_system,
        crate::quotas::get_quotas,
        crate::quotas::put_quotas,
        api::create_system_token,
        api::list_system_tokens,
        api::create_token,
        api::get_token,
        api::revoke_token,
        api::register_dataset,
        api::update_dataset,
        api::create_request,
        api::list_requests,
        api::get_request,
        api::approve_request,
        api::refuse_request,
        api::withdraw_request,
        api::history,
        api::list_agreements,
        api::get_agreement,
        api::revoke_agreement,
        api::file_change,
        api::list_changes,
        api::get_change,
        api::accept_change,
        api::reject_change,
        loads::upload,
        loads::get_load,
        loads::list_loads,
        usage::report_usage,
        usage::my_usage,
        usage::usage_summary,
        usage::usage_records,
        crate::tapis::api::get_rules,
        crate::tapis::api::patch_rules,
        crate::tapis::api::list_institutions,
        crate::tapis::api::put_institution,
        crate::tapis::api::add_planner,
        crate::tapis::api::list_documents,
        crate::tapis::api::create_document,
        crate::tapis::api::get_document,
        crate::tapis::api::move_stage,
        crate::tapis::api::set_territory,
        crate::tapis::api::history,
        crate::tapis::api::institutions_for,
        crate::tapis::api::list_requests,
        crate::tapis::api::send_request,
        crate::tapis::api::extend,
        crate::tapis::api::list_versions,
        crate::tapis::api::add_version,
        crate::tapis::api::get_version,
        crate::tapis::api::list_consultations,
        crate::tapis::api::schedule,
        crate::tapis::api::get_response,
        crate::tapis::api::post_response,
        crate::tapis::parcels::get_parcels,
        crate::tapis::parcels::get_cadastre,
        crate::tapis::parcels::put_system,
        crate::tapis::help::api::search_articles,
        crate::tapis::help::api::get_article,
        crate::tapis::help::api::put_article,
        crate::tapis::help::api::delete_article,
        crate::tapis::help::api::feedback,
        crate::tapis::help::api::feedback_stats,
        crate::tapis::api::add_file,
        crate::tapis::api::get_file,
        crate::tapis::api::add_comment,
        crate::tapis::api::list_comments,
        crate::tapis::api::label_comment,
        crate::tapis::api::split_comment,
        crate::tapis::api::answer_comment,
        crate::tapis::api::receipt,
        crate::tapis::api::report,
        crate::tapis::api::answer_blocks,
        crate::tapis::api::put_answer_block,
        crate::calendar::api::year,
        crate::calendar::api::set_day,
        crate::calendar::api::remove_day,
        crate::outbox::api::get_email,
        crate::outbox::api::put_email,
        crate::outbox::api::inbox,
        crate::outbox::api::list,
        map::set_grantor,
        map::add_staff,
        map::list_staff,
        map::create_programme,
        map::list_programmes,
        map::get_programme,
        map::set_scoresheet,
        map::ranking,
        map::decide_all,
        map::create_application,
        map::list_applications,
        map::get_application,
        map::edit_application,
        map::submit,
        map::transition,
        map::history,
        map::access_log,
        map::get_aid,
        map::add_aid,
        map::get_links,
        map::add_link,
        map::remove_link,
        map::list_regimes,
        map::put_regime,
        map::get_settings,
        map::put_settings,
        map::retention,
        map::inbox,
        map::export,
        map::due_reports,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "meta", description = "Health, readiness and this document"),
        (name = "auth", description = "Who the caller is"),
        (name = "datasets", description = "The catalog and data flows"),
        (name = "records", description = "Masked record lookups"),
        (name = "organisations"), (name = "users"), (name = "systems"), (name = "tokens"),
        (name = "requests", description = "Access requests and decisions"),
        (name = "agreements", description = "Agreements in force, revocation"),
        (name = "schema-changes", description = "Change management of dataset schemas"),
        (name = "loads", description = "New snapshots of datasets: uploads and their outcome"),
        (name = "history", description = "Every state change: who, when, why"),
        (name = "usage", description = "The personal-data usage audit: usage events, the \
            citizen's view of who used their data, owners' and admins' summaries and exports"),
        (name = "map", description = "MAP, grant management: programmes, applications from \
            application to closure, evaluation, payments, de minimis (docs/map.md)"),
        (name = "tapis", description = "TAPIS, territorial development planning: documents, \
            stages, territory, rules, coordination with institutions (docs/tapis.md)"),
        (name = "calendar", description = "Working days: public holidays and moved working \
            days (docs/calendar.md)"),
        (name = "notifications", description = "E-mail: a person's address, the outbox \
            (docs/notifications.md)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A DAGR API token: `dagr_` and 64 hex digits"))
                    .build(),
            ),
        );
    }
}

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
