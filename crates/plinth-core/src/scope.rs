//! Who is acting. (In which tenant is `plinth_tenancy::TenantScope`, which only tenant
//! authorisation can make.)

use serde::Serialize;

use crate::id::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ApiKey,
    Agent,
    System,
}

impl ActorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::Agent => "agent",
            ActorKind::System => "system",
        }
    }
}

/// The principal performing an action, with request context for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The user, API key or agent id; `None` for the system and anonymous callers.
    pub id: Option<uuid::Uuid>,
    /// The platform user impersonating `id`, when there is one.
    pub impersonator: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            impersonator: None,
            ip: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// A caller that is not signed in (sign-up, login, setup), identified by its request.
    pub fn anonymous(ip: Option<String>, user_agent: Option<String>, request_id: Option<String>) -> Self {
        Self {
            kind: ActorKind::User,
            id: None,
            impersonator: None,
            ip,
            user_agent,
            request_id,
        }
    }

    pub fn user(user: UserId) -> Self {
        Self {
            kind: ActorKind::User,
            id: Some(user.0),
            ..Self::system()
        }
    }

    pub fn with_user(mut self, user: UserId) -> Self {
        self.kind = ActorKind::User;
        self.id = Some(user.0);
        self
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self.kind {
            ActorKind::User => self.id.map(UserId),
            _ => None,
        }
    }
}
