//! Webhook endpoints of a tenant: registering them (each change with its audit record and
//! event), their delivery logs, the dead-letter queue's replay, and what happens when
//! Plinth disables one (the record, the event and an e-mail to the tenant's owners).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use plinth_audit::AuditEntry;
use plinth_core::{Actor, FieldErrors, Page, PageRequest, TenantId, Timestamp};
use plinth_events::catalog::{
    WebhookCreated, WebhookDeleted, WebhookDisabled, WebhookReplayed, WebhookSecretRotated, WebhookUpdated,
};
use plinth_events::webhooks::endpoints::{self, ROTATION_OVERLAP};
use plinth_events::webhooks::{
    Delivery, DeliveryError, DeliveryFilter, Endpoint, EndpointInput, EndpointWithSecret, OnDisabled, Replay,
    SecretBox, SigningSecret, TargetRules, deliveries,
};
use plinth_events::{NewEvent, enqueue};
use plinth_identity::mail::{self, EmailKind};
use plinth_store::{Db, Tx, on};
use serde::{Deserialize, Serialize};

use crate::error::{TenancyError, TenancyResult};
use crate::scope::TenantScope;

/// The webhook service.
#[derive(Clone)]
pub struct Webhooks {
    db: Db,
    keys: Arc<dyn SecretBox>,
    rules: TargetRules,
}

/// What to replay: one dead delivery, or every dead delivery made since a time.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub delivery_id: Option<uuid::Uuid>,
    /// RFC 3339.
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// Deliveries put back on the schedule.
    pub deliveries: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestSent {
    /// The test delivery: follow it in the endpoint's delivery log.
    pub delivery_id: uuid::Uuid,
}

fn endpoint_id(reference: &str) -> TenancyResult<uuid::Uuid> {
    reference.parse().map_err(|_| TenancyError::NotFound)
}

fn sealing(e: plinth_events::webhooks::SecretError) -> TenancyError {
    TenancyError::Identity(plinth_identity::IdentityError::Crypto(e.to_string()))
}

impl Webhooks {
    pub fn new(db: Db, keys: Arc<dyn SecretBox>, rules: TargetRules) -> Self {
        Self { db, keys, rules }
    }

    pub async fn list(&self, scope: &TenantScope, page: &PageRequest) -> TenancyResult<Page<Endpoint>> {
        let after = page.after_id_or_nil()?;
        let mut conn = scope.read(&self.db).await?;
        Ok(endpoints::list(conn.conn(), scope.tenant(), after, page).await?)
    }

    pub async fn get(&self, scope: &TenantScope, reference: &str) -> TenancyResult<Endpoint> {
        let id = endpoint_id(reference)?;
        let mut conn = scope.read(&self.db).await?;
        endpoints::get(conn.conn(), scope.tenant(), id)
            .await?
            .ok_or(TenancyError::NotFound)
    }

    pub async fn create(&self, scope: &TenantScope, input: EndpointInput) -> TenancyResult<EndpointWithSecret> {
        let checked = endpoints::check(&self.rules, &input, true).await?;
        let secret = SigningSecret::generate().map_err(sealing)?;
        let sealed = self.keys.seal(&secret).map_err(sealing)?;
        let mut tx = scope.begin(&self.db).await?;
        if endpoints::count(tx.conn(), scope.tenant()).await? >= endpoints::MAX_ENDPOINTS {
            return Err(
                FieldErrors::single("url", "limit_reached", "a tenant has at most 50 webhook endpoints").into(),
            );
        }
        let id = endpoints::insert(
            &mut tx,
            scope.tenant(),
            &checked,
            input.enabled.unwrap_or(true),
            &sealed,
        )
        .await?;
        let url = checked.url.as_ref().map(ToString::to_string).unwrap_or_default();
        let event_types = checked.event_types.clone().unwrap_or_default();
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WEBHOOK_CREATE)
                .tenant(scope.tenant())
                .target("webhook", id)
                .changes(serde_json::json!({"url": url, "event_types": event_types})),
        )
        .await?;
        enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&WebhookCreated {
                webhook_id: id,
                url,
                event_types,
            })
            .tenant(scope.tenant())
            .subject("webhook", id),
        )
        .await?;
        tx.commit().await?;
        Ok(EndpointWithSecret {
            endpoint: self.get(scope, &id.to_string()).await?,
            secret: secret.expose(),
        })
    }

    pub async fn update(&self, scope: &TenantScope, reference: &str, input: EndpointInput) -> TenancyResult<Endpoint> {
        let before = self.get(scope, reference).await?;
        let checked = endpoints::check(&self.rules, &input, false).await?;
        let mut tx = scope.begin(&self.db).await?;
        let after = endpoints::update(&mut tx, scope.tenant(), &before, checked, input.enabled).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WEBHOOK_UPDATE)
                .tenant(scope.tenant())
                .target("webhook", before.id)
                .changes(serde_json::json!({
                    "url": {"before": before.url, "after": after.url},
                    "event_types": {"before": before.event_types, "after": after.event_types},
                    "enabled": {"before": before.enabled, "after": after.enabled},
                })),
        )
        .await?;
        enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&WebhookUpdated {
                webhook_id: before.id,
                enabled: after.enabled,
            })
            .tenant(scope.tenant())
            .subject("webhook", before.id),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn delete(&self, scope: &TenantScope, reference: &str) -> TenancyResult<()> {
        let endpoint = self.get(scope, reference).await?;
        let mut tx = scope.begin(&self.db).await?;
        endpoints::delete(&mut tx, scope.tenant(), endpoint.id).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WEBHOOK_DELETE)
                .tenant(scope.tenant())
                .target("webhook", endpoint.id)
                .changes(serde_json::json!({"url": endpoint.url})),
        )
        .await?;
        enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&WebhookDeleted {
                webhook_id: endpoint.id,
                url: endpoint.url.clone(),
            })
            .tenant(scope.tenant())
            .subject("webhook", endpoint.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new secret, shown once; the current one keeps signing for 24 hours so receivers
    /// can switch without losing a delivery.
    pub async fn rotate_secret(&self, scope: &TenantScope, reference: &str) -> TenancyResult<EndpointWithSecret> {
        let endpoint = self.get(scope, reference).await?;
        let secret = SigningSecret::generate().map_err(sealing)?;
        let sealed = self.keys.seal(&secret).map_err(sealing)?;
        let until = Timestamp::now() + ROTATION_OVERLAP;
        let mut tx = scope.begin(&self.db).await?;
        endpoints::rotate(&mut tx, scope.tenant(), endpoint.id, &sealed, until).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WEBHOOK_SECRET_ROTATE)
                .tenant(scope.tenant())
                .target("webhook", endpoint.id)
                .changes(serde_json::json!({"previous_expires_at": until.to_rfc3339()})),
        )
        .await?;
        enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&WebhookSecretRotated {
                webhook_id: endpoint.id,
                previous_expires_at: until.to_rfc3339(),
            })
            .tenant(scope.tenant())
            .subject("webhook", endpoint.id),
        )
        .await?;
        tx.commit().await?;
        Ok(EndpointWithSecret {
            endpoint: self.get(scope, &endpoint.id.to_string()).await?,
            secret: secret.expose(),
        })
    }

    /// Queues a `webhook.test` delivery to the endpoint (enabled or not: testing is how
    /// one finds out whether to enable it), attempted like any other.
    pub async fn send_test(&self, scope: &TenantScope, reference: &str) -> TenancyResult<TestSent> {
        let endpoint = self.get(scope, reference).await?;
        let mut tx = scope.begin(&self.db).await?;
        let delivery_id = deliveries::insert_test(&mut tx, scope.tenant(), endpoint.id).await?;
        tx.commit().await?;
        Ok(TestSent { delivery_id })
    }

    /// The endpoint's deliveries, newest first, with their attempts.
    pub async fn deliveries(
        &self,
        scope: &TenantScope,
        reference: &str,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> TenancyResult<Page<Delivery>> {
        if !filter.is_valid() {
            return Err(FieldErrors::single("status", "invalid_value", "pending, delivered or dead").into());
        }
        let endpoint = self.get(scope, reference).await?;
        let before = page.before_id()?;
        let mut conn = scope.read(&self.db).await?;
        Ok(deliveries::list(conn.conn(), scope.tenant(), endpoint.id, filter, before, page).await?)
    }

    /// Takes dead deliveries out of the dead-letter queue; each is attempted again from
    /// the first step of the schedule.
    pub async fn replay(
        &self,
        scope: &TenantScope,
        reference: &str,
        request: ReplayRequest,
    ) -> TenancyResult<Replayed> {
        let which = match (request.delivery_id, request.since.as_deref()) {
            (Some(id), None) => Replay::One(id),
            (None, Some(since)) => Replay::Since(Timestamp::parse_rfc3339(since).map_err(|_| {
                FieldErrors::single("since", "invalid_value", "an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
            })?),
            _ => {
                return Err(FieldErrors::single(
                    "delivery_id",
                    "required",
                    "name either one dead delivery (delivery_id) or a time (since)",
                )
                .into());
            }
        };
        let endpoint = self.get(scope, reference).await?;
        let mut tx = scope.begin(&self.db).await?;
        let count = deliveries::replay(&mut tx, scope.tenant(), endpoint.id, which).await?;
        if let Replay::One(_) = which
            && count == 0
        {
            return Err(TenancyError::NotFound);
        }
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WEBHOOK_REPLAY)
                .tenant(scope.tenant())
                .target("webhook", endpoint.id)
                .changes(serde_json::json!({"deliveries": count})),
        )
        .await?;
        enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&WebhookReplayed {
                webhook_id: endpoint.id,
                deliveries: count,
            })
            .tenant(scope.tenant())
            .subject("webhook", endpoint.id),
        )
        .await?;
        tx.commit().await?;
        Ok(Replayed { deliveries: count })
    }
}

/// Records, announces and tells the tenant's owners that Plinth disabled an endpoint.
pub struct DisableNotice {
    /// The public address of the server, for the link in the e-mail.
    pub base_url: String,
}

impl DisableNotice {
    async fn notify(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        endpoint: uuid::Uuid,
        url: &str,
        reason: &'static str,
    ) -> Result<(), DeliveryError> {
        let system = Actor::system();
        plinth_audit::append(
            tx,
            &system,
            AuditEntry::new(plinth_audit::action::WEBHOOK_DISABLE)
                .tenant(tenant)
                .target("webhook", endpoint)
                .changes(serde_json::json!({"url": url, "reason": reason})),
        )
        .await?;
        enqueue(
            tx,
            &system,
            NewEvent::of(&WebhookDisabled {
                webhook_id: endpoint,
                url: url.to_owned(),
                reason: reason.to_owned(),
            })
            .tenant(tenant)
            .subject("webhook", endpoint),
        )
        .await?;
        let (name, owners): (String, Vec<String>) = {
            let name: String = on!(tx.conn(), c => sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
                .bind(tenant).fetch_one(c).await)?;
            let owners: Vec<String> = on!(tx.conn(), c => sqlx::query_scalar(
                "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.tenant_id = $1 AND m.status = 'active' AND (',' || m.roles || ',') LIKE '%,owner,%'"
            ).bind(tenant).fetch_all(c).await)?;
            (name, owners)
        };
        let why = match reason {
            endpoints::disabled::GONE => "it answered 410 Gone, which says it no longer exists",
            _ => "every delivery to it has failed for 5 days",
        };
        let message = EmailKind::WebhookDisabled {
            tenant: name,
            url: url.to_owned(),
            reason: why.to_owned(),
            link: format!("{}/api/v1/tenants/{tenant}/webhooks/{endpoint}", self.base_url),
        }
        .render(&self.base_url)
        .map_err(|e| DeliveryError::Notice(e.to_string()))?;
        for owner in owners {
            mail::enqueue(tx, &owner, &message)
                .await
                .map_err(|e| DeliveryError::Notice(e.to_string()))?;
        }
        Ok(())
    }
}

impl OnDisabled for DisableNotice {
    fn disabled<'a>(
        &'a self,
        tx: &'a mut Tx,
        tenant: TenantId,
        endpoint: uuid::Uuid,
        url: &'a str,
        reason: &'static str,
    ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>> {
        Box::pin(self.notify(tx, tenant, endpoint, url, reason))
    }
}
