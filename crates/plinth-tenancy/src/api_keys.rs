//! Which permissions a personal API key may carry: the tenancy half of key creation.
//! Identity stores and checks keys but knows nothing of tenants' roles; a key's grant
//! is decided here, by the same access rule as any request, before identity issues it.

use plinth_access::{PermissionSet, is_known};
use plinth_core::{Actor, FieldErrors, UserId};
use plinth_identity::NewApiKey;

use crate::error::{TenancyError, TenancyResult};
use crate::service::Tenancy;

/// A key as its owner asks for it.
#[derive(Debug, Clone)]
pub struct ApiKeyRequest {
    pub name: String,
    /// The one tenant the key works in (id or slug).
    pub tenant: String,
    pub permissions: Vec<String>,
    pub expires_in_days: Option<i64>,
}

impl Tenancy {
    /// The key identity may issue for `request`: every permission from the catalog, the
    /// caller authorised in the tenant (membership, status, second factor), and no
    /// permission the caller does not hold there.
    pub async fn api_key_grant(
        &self,
        user: UserId,
        actor: Actor,
        request: ApiKeyRequest,
        mfa_used: bool,
    ) -> TenancyResult<NewApiKey> {
        let mut errors = FieldErrors::new();
        for (i, permission) in request.permissions.iter().enumerate() {
            if !is_known(permission) {
                errors.add(
                    &format!("/permissions/{i}"),
                    "unknown_permission",
                    "not a permission of the catalog",
                );
            }
        }
        if !errors.is_empty() {
            return Err(TenancyError::Validation(errors));
        }
        let ctx = self
            .authorize(user, actor, &request.tenant, "tenant:read", mfa_used)
            .await?;
        let requested = PermissionSet::from_keys(request.permissions.iter().map(String::as_str));
        if !requested.is_subset_of(&ctx.permissions) {
            return Err(TenancyError::Forbidden(
                "an API key cannot hold a permission you do not hold",
            ));
        }
        Ok(NewApiKey {
            name: request.name,
            tenant: ctx.scope.tenant(),
            permissions: request.permissions,
            expires_in_days: request.expires_in_days,
        })
    }
}
