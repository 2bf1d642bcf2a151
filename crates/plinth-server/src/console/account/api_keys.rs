//! Personal API keys: each works in one tenant with a subset of the owner's permissions
//! there; the key is shown once, when made.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_core::{MAX_PAGE_LIMIT, PageRequest};
use plinth_tenancy::ApiKeyRequest;

use super::Done;
use crate::console::shell::when;
use crate::console::{FormError, Shell, Visit, error_page, see_other};
use crate::extract::{ApiPath, ApiQuery};
use crate::problem::Problem;
use crate::routes::api_keys::create_key;
use crate::state::AppState;

const PATH: &str = "/console/account/api-keys";
/// The lifetimes offered, in days; none: until revoked.
const LIFETIMES: [(&str, &str); 4] = [
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
    ("", "Until revoked"),
];

struct KeyRow {
    id: uuid::Uuid,
    name: String,
    prefix: String,
    tenant: String,
    permissions: String,
    created: String,
    expires: String,
    last_used: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/api_keys.html")]
struct ApiKeysPage {
    shell: Option<Shell>,
    keys: Vec<KeyRow>,
    /// The permissions the caller holds in the selected tenant: what a key may get.
    grantable: Vec<&'static str>,
    lifetimes: [(&'static str, &'static str); 4],
    done: Option<&'static str>,
    error: Option<FormError>,
    /// The key just made, shown this once.
    created: Option<String>,
}

async fn render(
    state: &AppState,
    visit: &Visit,
    done: Option<&'static str>,
    error: Option<FormError>,
    created: Option<String>,
) -> Response {
    let built = async {
        let shell = visit.shell(state, "api-keys").await?;
        let keys = state
            .identity
            .api_keys(&visit.me, &PageRequest::new(Some(MAX_PAGE_LIMIT), None))
            .await?
            .items;
        Ok::<_, Problem>((shell, keys))
    };
    let (shell, keys) = match built.await {
        Ok(parts) => parts,
        Err(problem) => return error_page(problem),
    };
    let tenant_name = |id: plinth_core::TenantId| {
        shell
            .tenants
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| "a tenant you left".to_owned(), |t| t.name.clone())
    };
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            tenant: tenant_name(k.tenant_id),
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            permissions: k.permissions.join(", "),
            created: when(k.created_at),
            expires: k.expires_at.map_or_else(|| "never".to_owned(), when),
            last_used: k.last_used_at.map_or_else(|| "never".to_owned(), when),
        })
        .collect();
    let status = error.as_ref().map_or(
        if created.is_some() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        |e| e.status,
    );
    let page = ApiKeysPage {
        grantable: shell.permissions.keys(),
        shell: Some(shell),
        keys,
        lifetimes: LIFETIMES,
        done,
        error,
        created,
    };
    (status, page).into_response()
}

pub async fn page(
    State(state): State<AppState>,
    visit: Visit,
    ApiQuery(done): ApiQuery<Done>,
) -> Response {
    let done = done.message(&[("revoked", "The key is revoked; it stopped working at once.")]);
    render(&state, &visit, done, None, None).await
}

/// The create form: `name`, `tenant`, `expires_in_days` and one `permissions` field per
/// ticked box (a repeated field, which the usual form extractor does not read).
fn request_of(body: &[u8]) -> Result<ApiKeyRequest, FormError> {
    let mut request = ApiKeyRequest {
        name: String::new(),
        tenant: String::new(),
        permissions: Vec::new(),
        expires_in_days: None,
    };
    for (field, value) in url::form_urlencoded::parse(body) {
        match field.as_ref() {
            "name" => request.name = value.into_owned(),
            "tenant" => request.tenant = value.into_owned(),
            "permissions" => request.permissions.push(value.into_owned()),
            "expires_in_days" if !value.is_empty() => {
                request.expires_in_days = Some(value.parse().map_err(|_| {
                    FormError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Choose how long the key works.",
                    )
                })?);
            }
            _ => {}
        }
    }
    Ok(request)
}

pub async fn create(State(state): State<AppState>, visit: Visit, body: Bytes) -> Response {
    let request = match request_of(&body) {
        Ok(request) => request,
        Err(error) => return render(&state, &visit, None, Some(error), None).await,
    };
    match create_key(&state, &visit.me, &visit.context, request).await {
        Ok(created) => render(&state, &visit, None, None, Some(created.key)).await,
        Err(problem) => match FormError::of(problem) {
            Ok(error) => render(&state, &visit, None, Some(error), None).await,
            Err(problem) => error_page(problem),
        },
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    visit: Visit,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Response {
    match state
        .identity
        .revoke_api_key(&visit.me, id, &visit.context.client())
        .await
    {
        Ok(()) => see_other(&format!("{PATH}?done=revoked")),
        Err(e) => error_page(e.into()),
    }
}
