//! Second factors: the authenticator app (TOTP) with its recovery codes, and passkeys.
//! Adding or removing a way in asks for the password (or a code) again.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_core::{MAX_PAGE_LIMIT, PageRequest};
use plinth_identity::{IdentityError, MfaStatus, PasskeyView, Proof, TotpEnrolment};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::Done;
use crate::console::shell::when;
use crate::console::{FormError, Shell, Visit, error_page, see_other};
use crate::extract::{ApiForm, ApiPath, ApiQuery};
use crate::problem::Problem;
use crate::state::AppState;

const PATH: &str = "/console/account/security";

struct PasskeyRow {
    id: Uuid,
    name: String,
    added: String,
    last_used: String,
}

impl From<PasskeyView> for PasskeyRow {
    fn from(p: PasskeyView) -> Self {
        PasskeyRow {
            id: p.id,
            name: p.name,
            added: when(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".to_owned(), when),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/security.html")]
struct SecurityPage {
    shell: Option<Shell>,
    status: MfaStatus,
    passkeys: Vec<PasskeyRow>,
    passkeys_available: bool,
    done: Option<&'static str>,
    /// A refusal, and the form it belongs to (`totp`, `totp-confirm`, `totp-off`,
    /// `codes`, `passkeys`).
    error: Option<FormError>,
    error_for: &'static str,
    /// TOTP enrolment begun: the QR code and the secret, until confirmed.
    enrolment: Option<TotpEnrolment>,
    /// Recovery codes, shown once.
    codes: Option<Vec<String>>,
}

/// What the page shows beyond its usual state.
#[derive(Default)]
struct Outcome {
    done: Option<&'static str>,
    error: Option<(&'static str, FormError)>,
    enrolment: Option<TotpEnrolment>,
    codes: Option<Vec<String>>,
}

async fn render(state: &AppState, visit: &Visit, outcome: Outcome) -> Response {
    let built = async {
        let shell = visit.shell(state, "security").await?;
        let status = state.identity.mfa_status(&visit.me).await?;
        let passkeys = state
            .identity
            .list_passkeys(&visit.me, &PageRequest::new(Some(MAX_PAGE_LIMIT), None))
            .await?
            .items
            .into_iter()
            .map(PasskeyRow::from)
            .collect();
        Ok::<_, Problem>((shell, status, passkeys))
    };
    let (shell, status, passkeys) = match built.await {
        Ok(parts) => parts,
        Err(problem) => return error_page(problem),
    };
    let (error_for, error) = match outcome.error {
        Some((form, error)) => (form, Some(error)),
        None => ("", None),
    };
    let code = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let page = SecurityPage {
        shell: Some(shell),
        status,
        passkeys,
        passkeys_available: state.identity.passkeys_available(),
        done: outcome.done,
        error,
        error_for,
        enrolment: outcome.enrolment,
        codes: outcome.codes,
    };
    (code, page).into_response()
}

/// A refusal as its form shows it; `wrong` words a proof or code that did not match.
fn refusal(e: IdentityError, wrong: &'static str) -> Result<FormError, Problem> {
    match e {
        IdentityError::InvalidCode => Ok(FormError::new(StatusCode::UNAUTHORIZED, wrong)),
        other => FormError::of(other),
    }
}

/// The page with the refusal of form `form`, or an error page for a server failure.
async fn refused(
    state: &AppState,
    visit: &Visit,
    form: &'static str,
    e: IdentityError,
) -> Response {
    match refusal(e, "That password or code is not right.") {
        Ok(error) => {
            let outcome = Outcome {
                error: Some((form, error)),
                ..Outcome::default()
            };
            render(state, visit, outcome).await
        }
        Err(problem) => error_page(problem),
    }
}

/// Recovery codes on the page, shown this once, with `message`.
async fn show_codes(
    state: &AppState,
    visit: &Visit,
    message: &'static str,
    codes: Vec<String>,
) -> Response {
    let outcome = Outcome {
        done: Some(message),
        codes: Some(codes),
        ..Outcome::default()
    };
    render(state, visit, outcome).await
}

pub async fn page(
    State(state): State<AppState>,
    visit: Visit,
    ApiQuery(done): ApiQuery<Done>,
) -> Response {
    let done = done.message(&[
        (
            "totp-off",
            "Two-step verification with an authenticator app is off.",
        ),
        (
            "passkey",
            "The passkey is added. You can sign in with it now.",
        ),
        ("renamed", "The passkey is renamed."),
        ("removed", "The passkey is removed."),
    ]);
    let outcome = Outcome {
        done,
        ..Outcome::default()
    };
    render(&state, &visit, outcome).await
}

/// The password or a current code, whichever the form carries.
#[derive(Deserialize)]
pub struct ProofForm {
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    code: Option<String>,
}

impl ProofForm {
    fn proof(self) -> Proof {
        match (self.code.filter(|c| !c.trim().is_empty()), self.password) {
            (Some(code), _) => Proof::Code(code.trim().to_owned()),
            (None, Some(password)) => Proof::Password(password),
            // An empty proof never matches; the service says so like a wrong one.
            (None, None) => Proof::Password(SecretString::from(String::new())),
        }
    }
}

pub async fn begin_totp(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<ProofForm>,
) -> Response {
    match state
        .identity
        .begin_totp(&visit.me, form.proof(), &visit.context.client())
        .await
    {
        Ok(enrolment) => {
            let outcome = Outcome {
                enrolment: Some(enrolment),
                ..Outcome::default()
            };
            render(&state, &visit, outcome).await
        }
        Err(e) => refused(&state, &visit, "totp", e).await,
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn confirm_totp(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<CodeForm>,
) -> Response {
    match state
        .identity
        .confirm_totp(&visit.me, form.code.trim(), &visit.context.client())
        .await
    {
        Ok(codes) => show_codes(
            &state,
            &visit,
            "Two-step verification is on. Keep these recovery codes somewhere safe: each signs in once when your phone is not at hand. They are shown only now.",
            codes,
        )
        .await,
        Err(e) => {
            // The QR code again, with the refusal: the app already holds this key.
            let enrolment = match state.identity.pending_totp(&visit.me).await {
                Ok(enrolment) => enrolment,
                Err(e) => return error_page(e.into()),
            };
            let wrong = "That code is not right. Codes change every 30 seconds; enter the current one.";
            let error = match refusal(e, wrong) {
                Ok(error) => error,
                Err(problem) => return error_page(problem),
            };
            let outcome = Outcome {
                error: Some(("totp-confirm", error)),
                enrolment,
                ..Outcome::default()
            };
            render(&state, &visit, outcome).await
        }
    }
}

pub async fn disable_totp(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<ProofForm>,
) -> Response {
    match state
        .identity
        .disable_totp(&visit.me, form.proof(), &visit.context.client())
        .await
    {
        Ok(()) => see_other(&format!("{PATH}?done=totp-off")),
        Err(e) => refused(&state, &visit, "totp-off", e).await,
    }
}

pub async fn recovery_codes(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<ProofForm>,
) -> Response {
    match state
        .identity
        .regenerate_recovery_codes(&visit.me, form.proof(), &visit.context.client())
        .await
    {
        Ok(codes) => show_codes(
            &state,
            &visit,
            "Your new recovery codes are below; the old ones no longer work. They are shown only now.",
            codes,
        )
        .await,
        Err(e) => refused(&state, &visit, "codes", e).await,
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    name: String,
}

pub async fn rename_passkey(
    State(state): State<AppState>,
    visit: Visit,
    ApiPath(id): ApiPath<Uuid>,
    ApiForm(form): ApiForm<RenameForm>,
) -> Response {
    match state
        .identity
        .rename_passkey(&visit.me, id, &form.name, &visit.context.client())
        .await
    {
        Ok(_) => see_other(&format!("{PATH}?done=renamed")),
        Err(e) => refused(&state, &visit, "passkeys", e).await,
    }
}

pub async fn remove_passkey(
    State(state): State<AppState>,
    visit: Visit,
    ApiPath(id): ApiPath<Uuid>,
) -> Response {
    match state
        .identity
        .remove_passkey(&visit.me, id, &visit.context.client())
        .await
    {
        Ok(()) => see_other(&format!("{PATH}?done=removed")),
        Err(e) => refused(&state, &visit, "passkeys", e).await,
    }
}
