//! Attribute policies in Cedar, layered on the role matrix.
//!
//! A tenant's policies can only narrow what its roles grant, never widen it, so no
//! policy is a path to privilege escalation:
//! - a `forbid` that matches denies;
//! - a `permit` is a condition: when the scope of at least one permit policy covers a
//!   request (principal, action, resource), one of those permits must also hold;
//! - a request no policy speaks about is decided by the roles alone.
//!
//! Policies are validated (strict mode) against [`schema_text`] when saved, so a policy
//! that names an unknown action or attribute is refused with Cedar's own message.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Effect, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    Policy, PolicyId, PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::catalog::{CATALOG, Scope};

/// The most policy documents a tenant may keep, and the largest one.
pub const MAX_DOCUMENTS: usize = 100;
pub const MAX_SOURCE_BYTES: usize = 16 * 1024;
/// The most statements in one document.
pub const MAX_STATEMENTS: usize = 20;

/// Why a policy document was refused: Cedar's messages, one per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .messages.join("; "))]
pub struct PolicyError {
    pub messages: Vec<String>,
}

impl PolicyError {
    fn one(message: impl Into<String>) -> Self {
        PolicyError {
            messages: vec![message.into()],
        }
    }
}

/// The Cedar schema every tenant policy is validated against: a user (member of its
/// roles), the resource acted on, and one action per tenant or workspace permission.
pub fn schema_text() -> &'static str {
    &SCHEMA_TEXT
}

static SCHEMA_TEXT: LazyLock<String> = LazyLock::new(|| {
    let mut text = String::from(
        "namespace Plinth {
  entity Role;
  entity Workspace;
  entity User in [Role];
  entity Resource {
    type: String,
    owner?: User,
    workspace?: Workspace,
  };
  type RequestContext = {
    mfa: Bool,
    now: datetime,
    hour: Long,
    weekday: Long,
    ip: ipaddr,
  };
",
    );
    for key in tenant_actions() {
        text.push_str(&format!(
            "  action \"{key}\" appliesTo {{ principal: [User], resource: [Resource], context: RequestContext }};\n"
        ));
    }
    text.push_str("}\n");
    text
});

struct Engine {
    validator: Validator,
    authorizer: Authorizer,
    user: EntityTypeName,
    role: EntityTypeName,
    workspace: EntityTypeName,
    resource: EntityTypeName,
    action: EntityTypeName,
}

static ENGINE: LazyLock<Result<Engine, String>> = LazyLock::new(|| {
    let (schema, _warnings) = Schema::from_cedarschema_str(schema_text()).map_err(|e| e.to_string())?;
    let name = |n: &str| EntityTypeName::from_str(n).map_err(|e| e.to_string());
    Ok(Engine {
        validator: Validator::new(schema),
        authorizer: Authorizer::new(),
        user: name("Plinth::User")?,
        role: name("Plinth::Role")?,
        workspace: name("Plinth::Workspace")?,
        resource: name("Plinth::Resource")?,
        action: name("Plinth::Action")?,
    })
});

fn engine() -> Result<&'static Engine, PolicyError> {
    ENGINE
        .as_ref()
        .map_err(|e| PolicyError::one(format!("the policy schema does not load: {e}")))
}

/// Parses and validates one policy document; returns its statements, each with the id
/// `<name>#<n>` so decisions can say which policy decided.
fn parse_document(name: &str, source: &str) -> Result<Vec<Policy>, PolicyError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(PolicyError::one(format!(
            "a policy document is at most {MAX_SOURCE_BYTES} bytes"
        )));
    }
    let parsed = PolicySet::from_str(source).map_err(|e| PolicyError {
        messages: cedar_messages(&e),
    })?;
    if parsed.templates().next().is_some() {
        return Err(PolicyError::one(
            "templates (policies with ?principal or ?resource slots) are not supported",
        ));
    }
    let statements: Vec<Policy> = parsed
        .policies()
        .enumerate()
        .map(|(n, p)| p.new_id(PolicyId::new(format!("{name}#{n}"))))
        .collect();
    if statements.is_empty() {
        return Err(PolicyError::one("the document holds no policy statement"));
    }
    if statements.len() > MAX_STATEMENTS {
        return Err(PolicyError::one(format!(
            "a policy document holds at most {MAX_STATEMENTS} statements"
        )));
    }
    let engine = engine()?;
    let set = PolicySet::from_policies(statements.clone()).map_err(|e| PolicyError::one(e.to_string()))?;
    let result = engine.validator.validate(&set, ValidationMode::Strict);
    if !result.validation_passed() {
        let mut messages: Vec<String> = Vec::new();
        for error in result.validation_errors() {
            // Cedar reports a problem once per action the statement covers; once is enough.
            let message = readable(name, &without_action(&cedar_messages(error).join(": ")));
            if !messages.contains(&message) {
                messages.push(message);
            }
        }
        return Err(PolicyError { messages });
    }
    Ok(statements)
}

/// Cedar's message with its help text, which usually says how to fix the policy.
fn cedar_messages(error: &dyn miette::Diagnostic) -> Vec<String> {
    let mut message = error.to_string();
    if let Some(related) = error.related() {
        for inner in related {
            message.push_str(": ");
            message.push_str(&inner.to_string());
        }
    }
    if let Some(help) = error.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    vec![message]
}

/// `for policy `name#2`, …` → `statement 3: …`.
fn readable(name: &str, message: &str) -> String {
    let prefix = format!("for policy `{name}#");
    if let Some(rest) = message.strip_prefix(&prefix)
        && let Some((number, tail)) = rest.split_once("`, ")
        && let Ok(n) = number.parse::<usize>()
    {
        return format!("statement {}: {tail}", n + 1);
    }
    message.to_owned()
}

fn without_action(message: &str) -> String {
    match message.find(" for Plinth::Action::\"") {
        Some(start) => {
            let after = &message[start + " for Plinth::Action::\"".len()..];
            match after.find('"') {
                Some(end) => format!("{}{}", &message[..start], &after[end + 1..]),
                None => message.to_owned(),
            }
        }
        None => message.to_owned(),
    }
}

/// The statements of a saved document, for display: a parse without the validation it
/// passed when saved.
pub fn statement_count(source: &str) -> usize {
    PolicySet::from_str(source).map_or(0, |set| set.policies().count())
}

/// Checks a document as it would be saved; returns the number of statements.
pub fn validate_document(source: &str) -> Result<usize, PolicyError> {
    parse_document("check", source).map(|s| s.len())
}

/// A tenant's compiled policies, split by the action they name so a request evaluates
/// only the statements that can apply to it: the statements themselves, and the scopes
/// of the permit statements with their conditions removed, which say whether a permit
/// applies at all.
#[derive(Debug, Default)]
pub struct TenantPolicies {
    by_action: HashMap<String, ActionPolicies>,
    count: usize,
    /// Whether any policy may read `context.now` or `context.ip` (a conservative test of
    /// the source): building those values parses text through Cedar's extension
    /// functions and was half the cost of a decision.
    uses_now: bool,
    uses_ip: bool,
}

#[derive(Debug, Default)]
struct ActionPolicies {
    statements: PolicySet,
    permit_scopes: PolicySet,
}

impl ActionPolicies {
    fn add(&mut self, statement: &Policy, scope: Option<&Policy>) -> Result<(), PolicyError> {
        let failed = |e: cedar_policy::PolicySetError| PolicyError::one(e.to_string());
        self.statements.add(statement.clone()).map_err(failed)?;
        if let Some(scope) = scope {
            self.permit_scopes.add(scope.clone()).map_err(failed)?;
        }
        Ok(())
    }
}

/// The catalog actions a statement's scope can match (the schema has no action groups).
fn actions_of(statement: &Policy) -> Vec<String> {
    let key = |uid: &EntityUid| uid.id().unescaped().to_owned();
    match statement.action_constraint() {
        ActionConstraint::Any => tenant_actions().map(str::to_owned).collect(),
        ActionConstraint::Eq(uid) => vec![key(&uid)],
        ActionConstraint::In(uids) => uids.iter().map(key).collect(),
    }
}

fn tenant_actions() -> impl Iterator<Item = &'static str> {
    CATALOG
        .iter()
        .filter(|d| matches!(d.scope, Scope::Tenant | Scope::Workspace))
        .map(|d| d.key)
}

impl TenantPolicies {
    /// Compiles `(name, source)` documents. A document that no longer validates (the
    /// catalog changed since it was saved) is an error naming it, never silently dropped.
    pub fn compile<'a>(documents: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, PolicyError> {
        let mut compiled = TenantPolicies::default();
        for (name, source) in documents {
            let statements = parse_document(name, source).map_err(|e| PolicyError {
                messages: e.messages.into_iter().map(|m| format!("policy {name}: {m}")).collect(),
            })?;
            compiled.uses_now |= source.contains("now");
            compiled.uses_ip |= source.contains("ip");
            for statement in statements {
                let scope = match statement.effect() {
                    Effect::Permit => Some(scope_only(&statement)?),
                    Effect::Forbid => None,
                };
                for action in actions_of(&statement) {
                    compiled
                        .by_action
                        .entry(action)
                        .or_default()
                        .add(&statement, scope.as_ref())?;
                }
                compiled.count += 1;
            }
        }
        Ok(compiled)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Decides a request the roles already allow.
    pub fn evaluate(&self, request: &PolicyRequest<'_>) -> Result<PolicyOutcome, PolicyError> {
        let Some(policies) = self.by_action.get(request.action) else {
            return Ok(PolicyOutcome::NotApplicable);
        };
        let engine = engine()?;
        let (cedar_request, entities) = request.to_cedar(engine, self.uses_now, self.uses_ip)?;
        let response = engine
            .authorizer
            .is_authorized(&cedar_request, &policies.statements, &entities);
        let first_reason = || response.diagnostics().reason().next().map(document_of);
        if let Some(cedar_policy::AuthorizationError::PolicyEvaluationError(error)) =
            response.diagnostics().errors().next()
        {
            // Cedar skips a policy that errors; for a forbid that would fail open.
            return Ok(PolicyOutcome::Denied {
                policy: document_of(error.policy_id()),
                why: format!("the policy could not be evaluated: {}", error.inner()),
            });
        }
        match response.decision() {
            Decision::Allow => Ok(PolicyOutcome::Permitted {
                policy: first_reason().unwrap_or_default(),
            }),
            Decision::Deny => {
                if let Some(policy) = first_reason() {
                    return Ok(PolicyOutcome::Denied {
                        policy,
                        why: "forbidden by policy".to_owned(),
                    });
                }
                if policies.permit_scopes.is_empty() {
                    return Ok(PolicyOutcome::NotApplicable);
                }
                let scopes = engine
                    .authorizer
                    .is_authorized(&cedar_request, &policies.permit_scopes, &entities);
                match scopes.diagnostics().reason().next() {
                    Some(id) => Ok(PolicyOutcome::Denied {
                        policy: document_of(id),
                        why: "the conditions of the permitting policy are not met".to_owned(),
                    }),
                    None => Ok(PolicyOutcome::NotApplicable),
                }
            }
        }
    }
}

fn document_of(id: &PolicyId) -> String {
    let id: &str = id.as_ref();
    id.rsplit_once('#').map_or(id, |(name, _)| name).to_owned()
}

/// The permit statement with its `when`/`unless` clauses removed.
fn scope_only(statement: &Policy) -> Result<Policy, PolicyError> {
    let mut json = statement.to_json().map_err(|e| PolicyError::one(e.to_string()))?;
    if let Some(object) = json.as_object_mut() {
        object.insert("conditions".to_owned(), serde_json::Value::Array(Vec::new()));
    }
    Policy::from_json(Some(statement.id().clone()), json).map_err(|e| PolicyError::one(e.to_string()))
}

/// How the policies answered a request the roles allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// No policy speaks about the request: the roles decide.
    NotApplicable,
    /// A permit applied and held, and nothing forbids.
    Permitted { policy: String },
    /// A forbid matched, or the permits that apply do not hold.
    Denied { policy: String, why: String },
}

impl PolicyOutcome {
    pub fn allowed(&self) -> bool {
        !matches!(self, PolicyOutcome::Denied { .. })
    }
}

/// The facts a request is decided on.
#[derive(Debug, Clone)]
pub struct PolicyRequest<'a> {
    pub principal: &'a str,
    pub roles: &'a [String],
    pub action: &'a str,
    pub resource: ResourceFacts<'a>,
    pub mfa: bool,
    pub ip: Option<IpAddr>,
    pub now: time::OffsetDateTime,
}

/// The resource acted on; for a route check it is the tenant itself.
#[derive(Debug, Clone, Default)]
pub struct ResourceFacts<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub owner: Option<&'a str>,
    pub workspace: Option<&'a str>,
}

/// `ip("…")` for an address. Cedar parses the function's name on every construction
/// (through its full grammar, 4.6 µs, most of a decision); addresses repeat, so the
/// expressions are kept.
fn ip_expression(ip: IpAddr) -> RestrictedExpression {
    static BUILT: LazyLock<moka::sync::Cache<IpAddr, RestrictedExpression>> =
        LazyLock::new(|| moka::sync::Cache::new(10_000));
    BUILT.get_with(ip, || RestrictedExpression::new_ip(ip.to_string()))
}

impl PolicyRequest<'_> {
    fn to_cedar(&self, engine: &Engine, with_now: bool, with_ip: bool) -> Result<(Request, Entities), PolicyError> {
        let uid = |kind: &EntityTypeName, id: &str| EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id));
        let principal = uid(&engine.user, self.principal);
        let parents: HashSet<EntityUid> = self.roles.iter().map(|r| uid(&engine.role, r)).collect();
        let resource = uid(
            &engine.resource,
            &format!("{}/{}", self.resource.kind, self.resource.id),
        );
        let mut attrs = HashMap::from([(
            "type".to_owned(),
            RestrictedExpression::new_string(self.resource.kind.to_owned()),
        )]);
        if let Some(owner) = self.resource.owner {
            attrs.insert(
                "owner".to_owned(),
                RestrictedExpression::new_entity_uid(uid(&engine.user, owner)),
            );
        }
        if let Some(workspace) = self.resource.workspace {
            attrs.insert(
                "workspace".to_owned(),
                RestrictedExpression::new_entity_uid(uid(&engine.workspace, workspace)),
            );
        }
        let invalid = |e: &dyn std::fmt::Display| PolicyError::one(e.to_string());
        let entities = Entities::from_entities(
            [
                Entity::new_no_attrs(principal.clone(), parents),
                Entity::new(resource.clone(), attrs, HashSet::new()).map_err(|e| invalid(&e))?,
            ],
            None,
        )
        .map_err(|e| invalid(&e))?;
        let now = self.now.to_offset(time::UtcOffset::UTC);
        let mut context = vec![
            ("mfa".to_owned(), RestrictedExpression::new_bool(self.mfa)),
            ("hour".to_owned(), RestrictedExpression::new_long(i64::from(now.hour()))),
            (
                "weekday".to_owned(),
                RestrictedExpression::new_long(i64::from(now.weekday().number_from_monday())),
            ),
        ];
        if with_now {
            let stamp = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
            context.push(("now".to_owned(), RestrictedExpression::new_datetime(stamp)));
        }
        if let Some(ip) = self.ip.filter(|_| with_ip) {
            context.push(("ip".to_owned(), ip_expression(ip)));
        }
        let context = Context::from_pairs(context).map_err(|e| invalid(&e))?;
        let request = Request::new(principal, uid(&engine.action, self.action), resource, context, None)
            .map_err(|e| invalid(&e))?;
        Ok((request, entities))
    }
}

/// Whether the schema loads: a test, and the server's start-up, check it.
pub fn schema_loads() -> Result<(), PolicyError> {
    engine().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(roles: &'a [String], action: &'a str, mfa: bool, ip: Option<&str>) -> PolicyRequest<'a> {
        PolicyRequest {
            principal: "u1",
            roles,
            action,
            resource: ResourceFacts {
                kind: "tenant",
                id: "t1",
                ..ResourceFacts::default()
            },
            mfa,
            ip: ip.map(|i| i.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
            now: time::macros::datetime!(2026-12-04 14:30 UTC),
        }
    }

    #[test]
    fn the_schema_loads_and_names_every_tenant_permission() {
        assert_eq!(schema_loads(), Ok(()));
        assert!(schema_text().contains("action \"members:invite\""));
    }

    #[test]
    fn an_unknown_action_is_refused_with_cedars_message() {
        let error = validate_document(r#"permit(principal, action == Plinth::Action::"members:fly", resource);"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("members:fly"), "{error}");
    }

    #[test]
    fn syntax_errors_and_unknown_attributes_are_refused() {
        assert!(validate_document("permit(principal, action, resource) when {").is_err());
        let error = validate_document("forbid(principal, action, resource) unless { context.shoe_size > 3 };")
            .err()
            .map(|e| e.messages)
            .unwrap_or_default();
        assert_eq!(
            error,
            vec!["statement 1: attribute `shoe_size` in context not found (help: did you mean `hour`?)"]
        );
        assert!(validate_document("").is_err(), "an empty document");
    }

    #[test]
    fn no_policies_leave_the_decision_to_the_roles() {
        let policies = TenantPolicies::compile([]).unwrap_or_default();
        let roles = vec!["member".to_owned()];
        assert_eq!(
            policies.evaluate(&request(&roles, "members:read", false, None)),
            Ok(PolicyOutcome::NotApplicable)
        );
    }

    #[test]
    fn a_forbid_denies_and_names_its_document() {
        let policies = TenantPolicies::compile([(
            "mfa-for-removals",
            r#"forbid(principal, action == Plinth::Action::"members:remove", resource) unless { context.mfa };"#,
        )])
        .unwrap_or_default();
        let roles = vec!["admin".to_owned()];
        let outcome = policies.evaluate(&request(&roles, "members:remove", false, None));
        assert!(
            matches!(&outcome, Ok(PolicyOutcome::Denied { policy, .. }) if policy == "mfa-for-removals"),
            "{outcome:?}"
        );
        assert_eq!(
            policies.evaluate(&request(&roles, "members:remove", true, None)),
            Ok(PolicyOutcome::NotApplicable)
        );
        assert_eq!(
            policies.evaluate(&request(&roles, "members:read", false, None)),
            Ok(PolicyOutcome::NotApplicable)
        );
    }

    #[test]
    fn a_permit_is_a_condition_for_the_requests_in_its_scope_only() {
        let policies = TenantPolicies::compile([(
            "office-network",
            r#"permit(principal in Plinth::Role::"member", action, resource)
               when { context.ip.isInRange(ip("10.0.0.0/8")) };"#,
        )])
        .unwrap_or_default();
        let member = vec!["member".to_owned()];
        let admin = vec!["admin".to_owned()];
        assert!(matches!(
            policies.evaluate(&request(&member, "members:read", false, Some("10.1.2.3"))),
            Ok(PolicyOutcome::Permitted { .. })
        ));
        assert!(matches!(
            policies.evaluate(&request(&member, "members:read", false, Some("192.0.2.1"))),
            Ok(PolicyOutcome::Denied { .. })
        ));
        assert!(
            matches!(
                policies.evaluate(&request(&member, "members:read", false, None)),
                Ok(PolicyOutcome::Denied { .. })
            ),
            "a check that gives no address fails closed"
        );
        assert_eq!(
            policies.evaluate(&request(&admin, "members:read", false, Some("192.0.2.1"))),
            Ok(PolicyOutcome::NotApplicable),
            "admins are outside the permit's scope"
        );
    }

    #[test]
    fn time_and_resource_attributes_are_available() {
        let policies = TenantPolicies::compile([
            (
                "office-hours",
                r#"forbid(principal, action == Plinth::Action::"tenant:update", resource) unless { context.hour >= 8 && context.hour < 18 && context.weekday <= 5 };"#,
            ),
            (
                "not-after-2027",
                r#"forbid(principal, action, resource) when { context.now > datetime("2027-01-01T00:00:00Z") };"#,
            ),
            (
                "own-things",
                r#"permit(principal, action == Plinth::Action::"workspaces:update", resource) when { resource has owner && resource.owner == principal };"#,
            ),
        ])
        .unwrap_or_default();
        assert_eq!(policies.len(), 3);
        let roles = vec!["admin".to_owned()];
        assert_eq!(
            policies.evaluate(&request(&roles, "tenant:update", false, None)),
            Ok(PolicyOutcome::NotApplicable),
            "a Friday afternoon"
        );
        let mut owned = request(&roles, "workspaces:update", false, None);
        owned.resource.owner = Some("u1");
        assert!(matches!(policies.evaluate(&owned), Ok(PolicyOutcome::Permitted { .. })));
        owned.resource.owner = Some("u2");
        assert!(matches!(policies.evaluate(&owned), Ok(PolicyOutcome::Denied { .. })));
    }

    #[test]
    fn templates_and_oversized_documents_are_refused() {
        assert!(validate_document("permit(principal == ?principal, action, resource);").is_err());
        let huge = "// padding\n".repeat(MAX_SOURCE_BYTES / 10);
        assert!(validate_document(&huge).is_err());
    }
}
