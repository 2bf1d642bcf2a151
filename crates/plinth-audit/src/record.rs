use plinth_core::{Actor, AuditId, TenantId, Timestamp};
use plinth_store::{StoreResult, Tx, exec, on};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::action::Action;
use crate::{GENESIS_HASH, PLATFORM_CHAIN};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [Outcome::Success, Outcome::Failure, Outcome::Denied]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// What happened, to be recorded with the actor and request context.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub tenant: Option<TenantId>,
    /// What happened, from the catalogue (`tenant.suspend`, `auth.login.failed`).
    pub action: Action,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    /// Before/after of changed fields; secrets must already be redacted by the caller.
    pub changes: Option<Value>,
    pub reason: Option<String>,
}

impl AuditEntry {
    pub fn new(action: Action) -> Self {
        Self {
            tenant: None,
            action,
            target_type: None,
            target_id: None,
            outcome: Outcome::Success,
            changes: None,
            reason: None,
        }
    }

    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn changes(mut self, changes: Value) -> Self {
        self.changes = Some(changes);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// A record as stored: every column, as verification reads it and an export carries it
/// (`changes` as the exact JSON text that was hashed, the time in microseconds, as hashed).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct StoredRecord {
    pub id: AuditId,
    pub chain: String,
    pub seq: i64,
    pub tenant_id: Option<TenantId>,
    #[serde(rename = "occurred_at_us", with = "micros")]
    pub occurred_at: Timestamp,
    pub actor_kind: String,
    pub actor_id: Option<uuid::Uuid>,
    pub impersonator_id: Option<uuid::Uuid>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub changes: Option<String>,
    pub reason: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The columns of [`StoredRecord`], for `SELECT`.
pub(crate) const STORED_COLUMNS: &str = "id, chain, seq, tenant_id, occurred_at, actor_kind, actor_id, impersonator_id, \
     action, target_type, target_id, outcome, ip, user_agent, request_id, changes, reason, prev_hash, hash";

/// A time as the microseconds since the Unix epoch that the hash covers.
mod micros {
    use plinth_core::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(time: &Timestamp, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_i64(time.unix_micros())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Timestamp, D::Error> {
        let micros = i64::deserialize(input)?;
        Timestamp::from_unix_micros(micros).ok_or_else(|| D::Error::custom("a time out of range"))
    }
}

impl StoredRecord {
    /// The hash this record's fields give after its `prev_hash`.
    pub fn computed_hash(&self) -> String {
        self.fields().hash(&self.prev_hash)
    }

    pub(crate) fn fields(&self) -> HashedFields<'_> {
        HashedFields {
            id: self.id,
            chain: &self.chain,
            seq: self.seq,
            tenant_id: self.tenant_id,
            occurred_at: self.occurred_at,
            actor_kind: &self.actor_kind,
            actor_id: self.actor_id,
            impersonator_id: self.impersonator_id,
            action: &self.action,
            target_type: self.target_type.as_deref(),
            target_id: self.target_id.as_deref(),
            outcome: &self.outcome,
            ip: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            request_id: self.request_id.as_deref(),
            changes: self.changes.as_deref(),
            reason: self.reason.as_deref(),
        }
    }
}

/// The fields covered by a record's hash, in their stored form.
pub(crate) struct HashedFields<'a> {
    pub id: AuditId,
    pub chain: &'a str,
    pub seq: i64,
    pub tenant_id: Option<TenantId>,
    pub occurred_at: Timestamp,
    pub actor_kind: &'a str,
    pub actor_id: Option<uuid::Uuid>,
    pub impersonator_id: Option<uuid::Uuid>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub changes: Option<&'a str>,
    pub reason: Option<&'a str>,
}

impl HashedFields<'_> {
    /// Length-prefixed encoding of every hashed field: unambiguous (no separator can be
    /// forged inside a value) and independent of how either database stores the values.
    fn encode(&self) -> Vec<u8> {
        fn put(out: &mut Vec<u8>, value: Option<&[u8]>) {
            match value {
                Some(bytes) => {
                    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
                None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
            }
        }
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"plinth-audit-v1");
        put(&mut out, Some(self.id.to_string().as_bytes()));
        put(&mut out, Some(self.chain.as_bytes()));
        put(&mut out, Some(&self.seq.to_be_bytes()));
        put(
            &mut out,
            self.tenant_id.map(|t| t.to_string()).as_deref().map(str::as_bytes),
        );
        put(&mut out, Some(&self.occurred_at.unix_micros().to_be_bytes()));
        put(&mut out, Some(self.actor_kind.as_bytes()));
        put(
            &mut out,
            self.actor_id.map(|a| a.to_string()).as_deref().map(str::as_bytes),
        );
        put(
            &mut out,
            self.impersonator_id
                .map(|a| a.to_string())
                .as_deref()
                .map(str::as_bytes),
        );
        put(&mut out, Some(self.action.as_bytes()));
        put(&mut out, self.target_type.map(str::as_bytes));
        put(&mut out, self.target_id.map(str::as_bytes));
        put(&mut out, Some(self.outcome.as_bytes()));
        put(&mut out, self.ip.map(str::as_bytes));
        put(&mut out, self.user_agent.map(str::as_bytes));
        put(&mut out, self.request_id.map(str::as_bytes));
        put(&mut out, self.changes.map(str::as_bytes));
        put(&mut out, self.reason.map(str::as_bytes));
        out
    }

    pub(crate) fn hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(self.encode());
        hex::encode(hasher.finalize())
    }
}

/// The chain a record of `tenant` (`None`: the platform) belongs to.
pub fn chain_of(tenant: Option<TenantId>) -> String {
    tenant.map_or_else(|| PLATFORM_CHAIN.to_owned(), |t| t.to_string())
}

/// The tenant whose chain `chain` is (`None`: the platform's).
pub(crate) fn chain_tenant(chain: &str) -> Option<TenantId> {
    chain.parse::<uuid::Uuid>().ok().map(TenantId)
}

/// Appends `entry` inside `tx`. Commit or roll back with the change it records.
pub async fn append(tx: &mut Tx, actor: &Actor, entry: AuditEntry) -> StoreResult<AuditId> {
    let id = AuditId::new();
    let chain = chain_of(entry.tenant);
    let (seq, prev_hash, last_at): (i64, String, Option<Timestamp>) = on!(tx.conn(), c => sqlx::query_as(
        "INSERT INTO audit_chain_heads (chain, seq, hash) VALUES ($1, 1, $2)
         ON CONFLICT (chain) DO UPDATE SET seq = audit_chain_heads.seq + 1
         RETURNING seq, hash, last_at"
    ).bind(&chain).bind(GENESIS_HASH).fetch_one(c).await)?;
    // Taken with the chain's head held, and never before the previous record's, so a
    // chain's times never decrease with its numbers (a clock stepped back included):
    // time filters become ranges of numbers (see `query`).
    let occurred_at = last_at.map_or_else(Timestamp::now, |last| Timestamp::now().max(last));
    // On the first record the head was just inserted holding the genesis hash.
    let changes = entry.changes.as_ref().map(Value::to_string);
    let fields = HashedFields {
        id,
        chain: &chain,
        seq,
        tenant_id: entry.tenant,
        occurred_at,
        actor_kind: actor.kind.as_str(),
        actor_id: actor.id,
        impersonator_id: actor.impersonator.map(|u| u.0),
        action: entry.action.name(),
        target_type: entry.target_type,
        target_id: entry.target_id.as_deref(),
        outcome: entry.outcome.as_str(),
        ip: actor.ip.as_deref(),
        user_agent: actor.user_agent.as_deref(),
        request_id: actor.request_id.as_deref(),
        changes: changes.as_deref(),
        reason: entry.reason.as_deref(),
    };
    let hash = fields.hash(&prev_hash);
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO audit_log (id, chain, seq, tenant_id, occurred_at, actor_kind, actor_id,
            impersonator_id, action, target_type, target_id, outcome, ip, user_agent,
            request_id, changes, reason, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    )
    .bind(id).bind(&chain).bind(seq).bind(entry.tenant).bind(occurred_at)
    .bind(fields.actor_kind).bind(actor.id).bind(fields.impersonator_id).bind(fields.action)
    .bind(entry.target_type).bind(fields.target_id).bind(fields.outcome).bind(fields.ip)
    .bind(fields.user_agent).bind(fields.request_id).bind(fields.changes).bind(fields.reason)
    .bind(&prev_hash).bind(&hash)
    .execute(c).await)?;
    exec!(tx.conn(), c => sqlx::query("UPDATE audit_chain_heads SET hash = $2, last_at = $3 WHERE chain = $1")
        .bind(&chain).bind(&hash).bind(occurred_at).execute(c).await)?;
    Ok(id)
}
