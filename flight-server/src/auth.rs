//! Who is calling: the bearer token of every call, the `Handshake` that turns basic
//! credentials into a bearer token, and the declared purpose of use.

use arrow_flight::{BasicAuth, HandshakeRequest};
use base64::Engine as _;
use dagr_engine::{Access, AccessPolicy, AuthError, Principal};
use prost::Message;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::error::auth_status;

pub use dagr_engine::audit::PURPOSE_HEADER;

/// The header with the caller's request id (echoed in access records); one is made up when
/// absent.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// An authenticated caller with the grants it holds now.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// What it may read, per dataset.
    pub access: Access,
    /// The declared purpose of use (`x-dagr-purpose`), if any.
    pub purpose: Option<String>,
    /// The request id: the caller's `x-request-id`, or a new random one.
    pub request_id: String,
}

/// Who a call's bearer token (`authorization: Bearer <token>`) stands for, without
/// resolving its grants (for calls that only need to be authenticated).
pub fn principal(policy: &dyn AccessPolicy, metadata: &MetadataMap) -> Result<Principal, Status> {
    let value = metadata
        .get("authorization")
        .ok_or_else(|| auth_status(AuthError::Missing))?
        .to_str()
        .map_err(|_| auth_status(AuthError::Invalid))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| {
            Status::unauthenticated(
                "send `authorization: Bearer <token>` (or log in with Handshake first)",
            )
        })?;
    policy.authenticate(token).map_err(auth_status)
}

/// Authenticate a call from its metadata and resolve the grants it holds now.
pub fn caller(policy: &dyn AccessPolicy, metadata: &MetadataMap) -> Result<Caller, Status> {
    caller_of(policy, principal(policy, metadata)?, metadata)
}

/// [`caller`] for a call already authenticated as `principal`.
pub fn caller_of(
    policy: &dyn AccessPolicy,
    principal: Principal,
    metadata: &MetadataMap,
) -> Result<Caller, Status> {
    let access = policy.access(&principal);
    let purpose =
        dagr_engine::audit::purpose_header(metadata.get(PURPOSE_HEADER).map(|v| v.as_bytes()))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let request_id = request_id(metadata);
    Ok(Caller {
        principal,
        access,
        purpose,
        request_id,
    })
}

/// The caller's request id (`x-request-id`) if it is a sane one, else a new random one.
pub fn request_id(metadata: &MetadataMap) -> String {
    dagr_engine::audit::request_id(
        metadata
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The bearer token a `Handshake` answers with, given the call's metadata and first
/// message. Accepted credentials, in order:
/// - `authorization: Basic base64(user:password)` where the password is a DAGR token (the
///   user name is not checked: use e.g. `token`) — what ADBC and JDBC send;
/// - `authorization: Bearer <token>`;
/// - a `BasicAuth` protobuf in the handshake payload, password = token.
pub fn handshake(
    policy: &dyn AccessPolicy,
    metadata: &MetadataMap,
    first: Option<&HandshakeRequest>,
) -> Result<String, Status> {
    let token = if let Some(value) = metadata.get("authorization") {
        let value = value
            .to_str()
            .map_err(|_| auth_status(AuthError::Invalid))?;
        if let Some(b64) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| Status::unauthenticated("malformed basic credentials"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Status::unauthenticated("malformed basic credentials"))?;
            let (_, password) = text
                .split_once(':')
                .ok_or_else(|| Status::unauthenticated("malformed basic credentials"))?;
            password.to_owned()
        } else if let Some(t) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            t.to_owned()
        } else {
            return Err(Status::unauthenticated(
                "use basic credentials (password = DAGR token) or a bearer token",
            ));
        }
    } else if let Some(req) = first.filter(|r| !r.payload.is_empty()) {
        let basic = BasicAuth::decode(req.payload.as_ref())
            .map_err(|_| Status::unauthenticated("the handshake payload is not BasicAuth"))?;
        basic.password
    } else {
        return Err(auth_status(AuthError::Missing));
    };
    policy.authenticate(&token).map_err(auth_status)?;
    Ok(token)
}
