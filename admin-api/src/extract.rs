//! Request extractors that answer in our problem+json shape: the authenticated [`Caller`],
//! a JSON body ([`Body`]) whose errors name the field, query strings ([`Params`]), and
//! keyset pagination ([`PageParams`], [`paged`]).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dagr_engine::{AccessPolicy, AuthError, Principal};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::ApiError;
use crate::store::Page;

/// The authenticated caller of a request (`Authorization: Bearer <token>`).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let value = header.to_str().map_err(|_| AuthError::Invalid)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Invalid)?;
        state.gov.ensure_fresh().await.map_err(|e| {
            tracing::error!(error = %e, "the access policy is stale and cannot be refreshed");
            AuthError::Unavailable
        })?;
        let principal = state.gov.policy().authenticate(token)?;
        Ok(Caller(principal))
    }
}

/// The header with the caller's request id; one is made up when absent.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What a read needs for its access record: the declared purpose (`x-dagr-purpose`) and the
/// request id (`x-request-id`, or a new one).
#[derive(Debug, Clone)]
pub struct ReadContext {
    /// The declared purpose, checked.
    pub purpose: Option<String>,
    /// The request id.
    pub request_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ReadContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let purpose = dagr_engine::audit::purpose_header(
            parts
                .headers
                .get(dagr_engine::audit::PURPOSE_HEADER)
                .map(|v| v.as_bytes()),
        )?;
        let request_id = dagr_engine::audit::request_id(
            parts
                .headers
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok()),
        );
        Ok(ReadContext {
            purpose,
            request_id,
        })
    }
}

/// A JSON request body; a malformed body is a 400, a body that does not fit the resource a
/// 422 naming the field, and a missing content type a 415-like 400 that says so.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::TooLarge(format!("the body exceeds {} bytes", crate::MAX_BODY_BYTES)),
            ),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Query-string parameters; bad ones are a 400 naming the parameter.
#[derive(Debug, Clone)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(e) => Err(ApiError::BadRequest(query_error(&e))),
        }
    }
}

fn query_error(e: &QueryRejection) -> String {
    e.body_text()
}

/// Default page size of list endpoints.
pub const DEFAULT_PAGE: i64 = 100;
/// Largest page size of list endpoints.
pub const MAX_PAGE: i64 = 1000;

/// Pagination parameters of every list endpoint. Lists are bare JSON arrays; when more
/// items follow, the response carries `Link: <...&after=CURSOR>; rel="next"`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–1000 (default 100).
    pub limit: Option<i64>,
    /// Cursor from the previous page's `Link` header.
    pub after: Option<String>,
}

impl PageParams {
    /// The validated page.
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE}; got {limit}"
            )));
        }
        if let Some(a) = &self.after
            && (a.is_empty() || a.len() > 64)
        {
            return Err(ApiError::BadRequest(
                "after: not a cursor of this API".into(),
            ));
        }
        Ok(Page {
            limit,
            after: self.after.clone(),
        })
    }
}

/// A page of items as a JSON array, with a `Link: rel="next"` header when the page is full.
pub fn paged<T: Serialize>(
    items: Vec<T>,
    page: &Page,
    path: &str,
    query: Option<&str>,
    cursor: impl Fn(&T) -> String,
) -> Response {
    let next = (items.len() as i64 == page.limit)
        .then(|| items.last().map(&cursor))
        .flatten();
    let mut response = Json(items).into_response();
    if let Some(c) = next {
        let mut params: Vec<String> = query
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("after="))
            .map(str::to_owned)
            .collect();
        params.push(format!("after={}", encode(&c)));
        let link = format!("<{path}?{}>; rel=\"next\"", params.join("&"));
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

/// Percent-encode a URL component (everything but RFC 3986's unreserved characters), e.g.
/// a cursor for a query string.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
