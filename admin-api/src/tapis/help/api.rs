//! The REST routes of TAPIS's help under `/api/v1/tapis/help` (docs/tapis.md, "Help and
//! FAQ"): search and articles are public, and so is a vote; writing, deleting and the
//! statistics are an admin's, the role checked before a body is read. A vote's body is
//! refused past [`MAX_FEEDBACK_BYTES`] before it is parsed, and counts once per article,
//! network source and day ([`super::vote`]).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::AppState;
use crate::error::{ApiError, Problem, Result};
use crate::extract::{Caller as Auth, Params};
use crate::gate::RawJson;

use super::super::service::Caller;
use super::super::store::TapisStore;
use super::{Article, ArticleInput, ArticleStats, Feedback, HelpQuery, MAX_FEEDBACK_BYTES, Voter};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tapis/help", get(search_articles))
        .route("/api/v1/tapis/help/stats", get(feedback_stats))
        .route(
            "/api/v1/tapis/help/{id}",
            get(get_article).put(put_article).delete(delete_article),
        )
        .route("/api/v1/tapis/help/{id}/feedback", post(feedback))
}

fn store(s: &AppState) -> TapisStore {
    TapisStore::new(s.gov.store())
}

async fn caller(s: &AppState, p: &dagr_engine::Principal) -> Result<Caller> {
    Ok(Caller::of(&store(s), p).await?)
}

/// Search help and FAQ (public): every word in the title or body, case and Latvian
/// diacritics folded (`e` finds `ē`), title hits first.
#[utoipa::path(get, path = "/api/v1/tapis/help", tag = "tapis", params(HelpQuery),
    responses((status = 200, body = [Article]), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn search_articles(
    State(s): State<AppState>,
    Params(q): Params<HelpQuery>,
) -> Result<Json<Vec<Article>>> {
    Ok(Json(super::search(&store(&s), &q).await?))
}

/// One help article (public).
#[utoipa::path(get, path = "/api/v1/tapis/help/{id}", tag = "tapis",
    params(("id" = String, Path, description = "The article")),
    responses((status = 200, body = Article), (status = 404, body = Problem)))]
pub(crate) async fn get_article(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Article>> {
    Ok(Json(super::article(&store(&s), &id).await?))
}

/// Write a help article (an admin): 201 when new, 200 when changed.
#[utoipa::path(put, path = "/api/v1/tapis/help/{id}", tag = "tapis", request_body = ArticleInput,
    params(("id" = String, Path, description = "The article: 1 to 64 of a-z, 0-9, - and _")),
    responses((status = 200, body = Article), (status = 201, body = Article), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn put_article(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: RawJson,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    super::super::service::require_admin(&c)?;
    let b: ArticleInput = body.parse()?;
    let (a, created) = super::put_article(&store(&s), &c, &id, &b).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(a)).into_response())
}

/// Delete a help article (an admin); its votes go with it.
#[utoipa::path(delete, path = "/api/v1/tapis/help/{id}", tag = "tapis",
    params(("id" = String, Path, description = "The article")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn delete_article(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let c = caller(&s, &p).await?;
    super::delete_article(&store(&s), &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Was this helpful?" (public, anonymous): `{"helpful": true|false}`, at most 256 bytes.
/// One vote per article, network source and day; voting again changes it.
#[utoipa::path(post, path = "/api/v1/tapis/help/{id}/feedback", tag = "tapis", request_body = Feedback,
    params(("id" = String, Path, description = "The article")),
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn feedback(
    State(s): State<AppState>,
    Path(id): Path<String>,
    extensions: Extensions,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<StatusCode> {
    let bytes = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if bytes.len() > MAX_FEEDBACK_BYTES {
        return Err(ApiError::TooLarge(format!(
            "a vote is at most {MAX_FEEDBACK_BYTES} bytes: {{\"helpful\": true}} or false"
        )));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::BadRequest(
            "Expected request with `Content-Type: application/json`".into(),
        ));
    }
    let f: Feedback = match Json::<Feedback>::from_bytes(&bytes) {
        Ok(Json(f)) => f,
        Err(JsonRejection::JsonDataError(e)) => return Err(ApiError::Unprocessable(e.body_text())),
        Err(e) => return Err(ApiError::BadRequest(e.body_text())),
    };
    let source = extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(
            || crate::throttle::UNKNOWN_SOURCE.to_owned(),
            |c| crate::throttle::source_of(c.0.ip()),
        );
    super::vote(&store(&s), &id, f.helpful, Voter::Source(&source)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The votes on every article (an admin), the least helpful first.
#[utoipa::path(get, path = "/api/v1/tapis/help/stats", tag = "tapis",
    responses((status = 200, body = [ArticleStats]), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn feedback_stats(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<ArticleStats>>> {
    let c = caller(&s, &p).await?;
    Ok(Json(super::stats(&store(&s), &c).await?))
}
