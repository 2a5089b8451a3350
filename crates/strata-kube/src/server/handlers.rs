//! One handler for every API request: route, call the registry, answer in
//! Kubernetes' shapes (objects, lists, Tables, watch streams, Status).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::path::{Route, Target, route};
use super::{App, discovery, openapi, protobuf, watch};
use crate::error::ApiError;
use crate::kinds::Kind;
use crate::patch::PatchKind;
use crate::registry::{DeleteOptions, Deleted, Filter, Subresource, strict};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Listing, Object};
use crate::table::{self, IncludeObject};

/// Request bodies larger than this are refused (upstream's limit is 3 MiB
/// for an object; 8 MiB leaves room for big patches).
const MAX_BODY: usize = 8 << 20;

pub type Params = HashMap<String, String>;

pub async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    match dispatch(&app, request).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

async fn dispatch(app: &Arc<App>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let params: Params = Query::try_from_uri(&parts.uri)
        .map(|Query(p)| p)
        .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))?;
    let get = parts.method == Method::GET;
    match route(parts.uri.path()) {
        Route::CoreVersions if get => Ok(json(
            StatusCode::OK,
            &discovery::core_versions(&app.address),
        )),
        Route::Groups if get => Ok(json(StatusCode::OK, &discovery::group_list())),
        Route::Group(g) if get => discovery::one_group(&g)
            .map(|v| json(StatusCode::OK, &v))
            .ok_or(ApiError::NoRoute),
        Route::Resources { group, version } if get => discovery::resources(&group, &version)
            .map(|v| json(StatusCode::OK, &v))
            .ok_or(ApiError::NoRoute),
        Route::Version if get => Ok(json(StatusCode::OK, &discovery::version())),
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::Resource(target) => {
            let bytes = axum::body::to_bytes(body, MAX_BODY)
                .await
                .map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
            resource(app, &parts.method, &parts.headers, target, &params, &bytes).await
        }
        Route::CoreVersions
        | Route::Groups
        | Route::Group(_)
        | Route::Resources { .. }
        | Route::Version => Err(ApiError::MethodNotAllowed),
        Route::OpenApiV3(None) if get => Ok(json(StatusCode::OK, &openapi::root())),
        Route::OpenApiV3(Some(path)) if get => openapi::document(&path)
            .map(|v| json(StatusCode::OK, &v))
            .ok_or(ApiError::NoRoute),
        Route::OpenApiV3(_) => Err(ApiError::MethodNotAllowed),
        Route::NotFound => Err(ApiError::NoRoute),
    }
}

async fn resource(
    app: &Arc<App>,
    method: &Method,
    headers: &HeaderMap,
    target: Target,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let registry = &app.registry;
    let kind = target.kind;
    let dry_run = params.get("dryRun").is_some_and(|v| v == "All");
    let part = match target.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if kind.info().status_subresource => Subresource::Status,
        Some("log") if kind == Kind::Pod && *method == Method::GET => {
            return pod_log(app, &target, params);
        }
        Some(_) => return Err(ApiError::NoRoute),
    };
    let namespace = target.namespace.as_deref().unwrap_or("");
    let Some(name) = target.name.as_deref() else {
        return match *method {
            Method::GET => {
                let filter = filter(kind, params)?;
                if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
                    return watch::stream(
                        app,
                        kind,
                        target.namespace.as_deref(),
                        filter,
                        params,
                        wants_table(headers),
                    );
                }
                let listing = registry.list(kind, target.namespace.as_deref(), &filter);
                render_list(kind, listing, headers, params)
            }
            Method::POST => {
                let body = parse_body(kind, headers, body)?;
                let warnings = check_fields(kind, params, &body)?;
                let object = registry.create(kind, namespace, body, dry_run)?;
                Ok(warn(json(StatusCode::CREATED, &object.body), warnings))
            }
            _ => Err(ApiError::MethodNotAllowed),
        };
    };
    match *method {
        Method::GET => {
            let object = registry.get(kind, namespace, name)?;
            render_one(kind, object, headers, params)
        }
        Method::PUT => {
            let body = parse_json(body)?;
            let warnings = check_fields(kind, params, &body)?;
            let object = registry.update(kind, namespace, name, body, part, dry_run)?;
            Ok(warn(json(StatusCode::OK, &object.body), warnings))
        }
        Method::PATCH => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let patch_kind = PatchKind::from_content_type(content_type).ok_or_else(|| {
                let accepted: Vec<&str> = PatchKind::ALL.map(PatchKind::content_type).into();
                ApiError::UnsupportedMediaType(accepted.join(", "))
            })?;
            let warnings = match patch_kind {
                PatchKind::Json => Vec::new(),
                _ => check_fields(kind, params, &crate::patch::parse_apply_body(body)?)?,
            };
            let (object, created) =
                registry.patch(kind, namespace, name, patch_kind, body, part, dry_run)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(warn(json(code, &object.body), warnings))
        }
        Method::DELETE => {
            let options = delete_options(body, params)?;
            match registry.delete(kind, namespace, name, &options)? {
                Deleted::Removed(object) => Ok(json(StatusCode::OK, &object.body)),
                Deleted::Marked(object) => Ok(json(StatusCode::ACCEPTED, &object.body)),
            }
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn pod_log(app: &App, target: &Target, params: &Params) -> Result<Response, ApiError> {
    let logs = app.logs.as_ref().ok_or_else(|| {
        ApiError::BadRequest("this server runs no node agent, so it has no pod logs".into())
    })?;
    let namespace = target.namespace.as_deref().unwrap_or("default");
    let name = target.name.as_deref().unwrap_or_default();
    app.registry.get(Kind::Pod, namespace, name)?;
    let text = logs(namespace, name, params.get("container").map(String::as_str))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response())
}

pub fn filter(kind: Kind, params: &Params) -> Result<Filter, ApiError> {
    let bad = |e: crate::selector::SelectorError| ApiError::BadRequest(e.to_string());
    Ok(Filter {
        labels: params
            .get("labelSelector")
            .filter(|s| !s.is_empty())
            .map(|s| LabelSelector::parse(s))
            .transpose()
            .map_err(bad)?,
        fields: params
            .get("fieldSelector")
            .filter(|s| !s.is_empty())
            .map(|s| FieldSelector::parse(kind, s))
            .transpose()
            .map_err(bad)?,
    })
}

fn delete_options(body: &[u8], params: &Params) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions::default();
    if !body.is_empty() {
        let body = parse_json(body)?;
        options.uid = body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        options.resource_version = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        options.grace_period_seconds = body.get("gracePeriodSeconds").and_then(Value::as_i64);
        options.dry_run = body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    }
    if let Some(grace) = params.get("gracePeriodSeconds") {
        options.grace_period_seconds = Some(grace.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "gracePeriodSeconds must be a number, not \"{grace}\""
            ))
        })?);
    }
    options.dry_run |= params.get("dryRun").is_some_and(|v| v == "All");
    Ok(options)
}

/// `fieldValidation`: Strict refuses unknown fields, Warn reports them in
/// `Warning` headers, Ignore (and no parameter) drops them.
fn check_fields(kind: Kind, params: &Params, body: &Value) -> Result<Vec<String>, ApiError> {
    let mode = params
        .get("fieldValidation")
        .map(String::as_str)
        .unwrap_or("Ignore");
    if !matches!(mode, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError::BadRequest(format!(
            "fieldValidation must be Strict, Warn or Ignore, not \"{mode}\""
        )));
    }
    if mode == "Ignore" {
        return Ok(Vec::new());
    }
    let unknown: Vec<String> = strict::unknown_fields(kind, body)
        .into_iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if mode == "Strict" && !unknown.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
            kind.info().version,
            unknown.join(", ")
        )));
    }
    Ok(unknown)
}

/// Adds one `Warning` header per message, as kubectl prints them.
fn warn(mut response: Response, warnings: Vec<String>) -> Response {
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}

/// A create's body: JSON, or the protobuf `kubectl create namespace` sends.
fn parse_body(kind: Kind, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with(protobuf::CONTENT_TYPE) {
        return protobuf::decode(kind, body);
    }
    parse_json(body)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

/// Whether the client asked for a `meta.k8s.io` Table (kubectl get does).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}

fn include_object(params: &Params) -> Result<IncludeObject, ApiError> {
    IncludeObject::parse(params.get("includeObject").map(String::as_str))
        .map_err(ApiError::BadRequest)
}

fn render_one(
    kind: Kind,
    object: Object,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, ApiError> {
    if wants_table(headers) {
        let revision = object.resource_version;
        let table = table::table(
            kind,
            &[object],
            revision,
            jiff::Timestamp::now(),
            include_object(params)?,
        );
        return Ok(json(StatusCode::OK, &table));
    }
    Ok(json(StatusCode::OK, &object.body))
}

fn render_list(
    kind: Kind,
    listing: Listing,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, ApiError> {
    if wants_table(headers) {
        let table = table::table(
            kind,
            &listing.items,
            listing.revision,
            jiff::Timestamp::now(),
            include_object(params)?,
        );
        return Ok(json(StatusCode::OK, &table));
    }
    // Written by hand so 10,000 objects are serialised once, straight out
    // of the store's shared bodies.
    let mut out = Vec::with_capacity(64 + listing.items.len() * 1024);
    let _ = write!(
        out,
        r#"{{"kind":"{}List","apiVersion":"{}","metadata":{{"resourceVersion":"{}"}},"items":["#,
        kind.as_str(),
        kind.api_version(),
        listing.revision
    );
    for (i, object) in listing.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &*object.body).map_err(ApiError::internal)?;
    }
    out.extend_from_slice(b"]}");
    Ok(raw_json(StatusCode::OK, out))
}

pub fn json(code: StatusCode, value: &Value) -> Response {
    raw_json(code, serde_json::to_vec(value).unwrap_or_default())
}

fn raw_json(code: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn error_response(error: &ApiError) -> Response {
    let (code, _) = error.code_and_reason();
    json(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.to_status(),
    )
}
