//! Role checks before body parsing: a handler whose role rule does not depend on the body
//! takes it as [`RawJson`] (bytes, within [`crate::MAX_BODY_BYTES`]), checks the caller's
//! role, and only then parses it. A caller without the role gets its 403 (or 404) whatever
//! the body holds, and no parser (JSON, or the recursive type-string parser a
//! `DatasetDefinition` runs) ever works for it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use dagr_engine::{Principal, Role};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::governance::{GovError, GovResult};

/// A JSON request body not parsed yet: [`RawJson::parse`] it after the role check.
#[derive(Debug, Clone)]
pub struct RawJson {
    bytes: Bytes,
    json: bool,
}

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(RawJson { bytes, json }),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge(
                format!("the body exceeds {} bytes", crate::MAX_BODY_BYTES),
            )),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

impl RawJson {
    /// The body as `T`, with the errors of [`crate::extract::Body`]: a malformed body is a
    /// 400, one that does not fit `T` a 422, a missing JSON content type a 400.
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        if !self.json {
            return Err(ApiError::BadRequest(
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        match Json::<T>::from_bytes(&self.bytes) {
            Ok(Json(v)) => Ok(v),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Whether the content type is `application/json` or `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Refuse anyone but an admin or an owner (of some organisation): the first check of a
/// request whose body names the organisation (a new dataset, a new system).
pub fn admin_or_owner(p: &Principal) -> GovResult<()> {
    match p.role {
        Role::Admin | Role::Owner => Ok(()),
        _ => Err(GovError::Forbidden(
            "only an admin or an owner of the organisation may do this".into(),
        )),
    }
}

/// Refuse anyone but an owner of organisation `org` (who changes the schema of its dataset
/// `dataset`), as [`crate::Governance::file_change`] does.
pub fn owner_of(p: &Principal, org: &str, dataset: &str) -> GovResult<()> {
    if p.role == Role::Owner && p.organisation.as_deref() == Some(org) {
        Ok(())
    } else {
        Err(GovError::Forbidden(format!(
            "only an owner of `{org}` changes the schema of `{dataset}`"
        )))
    }
}

/// Refuse anyone but a consumer (system or person), who files access requests.
pub fn consumer(p: &Principal) -> GovResult<()> {
    if p.role == Role::Consumer {
        Ok(())
    } else {
        Err(GovError::Forbidden(
            "only a consumer (system or user) files access requests".into(),
        ))
    }
}

/// Refuse anyone who mints no token at `POST /api/v1/tokens`, whatever the body names: an
/// admin (admin and subject tokens) and a person signed in to the portal (their own
/// person's token) pass; each kind's rule follows once the body is read
/// ([`crate::credentials`]). A person's token mints nothing, so it is refused here.
pub fn token_minter(p: &Principal) -> GovResult<()> {
    crate::Governance::refuse_person_token(p)?;
    if p.role == Role::Admin || p.user.is_some() {
        Ok(())
    } else {
        Err(GovError::Forbidden(
            "only an admin (admin and subject tokens) or a person signed in to the portal \
             (their own person's token) mints tokens here; system tokens are issued under \
             /api/v1/systems/{id}/tokens"
                .into(),
        ))
    }
}

/// Refuse anyone but a provider or consumer system (its system token), who reports usage.
pub fn reporting_system(p: &Principal) -> GovResult<()> {
    if p.system.is_some() && matches!(p.role, Role::Consumer | Role::Owner) {
        Ok(())
    } else {
        Err(GovError::Forbidden(
            "usage events are reported by provider and consumer systems, with their system \
             token"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            h
        };
        assert!(is_json(&h("application/json")));
        assert!(is_json(&h("Application/JSON; charset=utf-8")));
        assert!(is_json(&h("application/problem+json")));
        assert!(!is_json(&h("text/plain")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn garbage_is_a_bad_request_and_a_misfit_unprocessable() {
        let raw = |b: &'static str| RawJson {
            bytes: Bytes::from_static(b.as_bytes()),
            json: true,
        };
        #[derive(Debug, serde::Deserialize)]
        struct T {
            a: i64,
        }
        assert!(matches!(
            raw("nope").parse::<T>(),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            raw(r#"{"a": "x"}"#).parse::<T>(),
            Err(ApiError::Unprocessable(_))
        ));
        assert_eq!(raw(r#"{"a": 1}"#).parse::<T>().unwrap().a, 1);
    }
}
