//! Signing in to the consoles: password, then the second step when the account has
//! one, then the session cookie; and signing out.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use plinth_identity::{
    BrowserSession, IdentityError, LoginOutcome, MfaChallenge, PublicKeyCredential, SecretToken,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Shell, csrf, error_page, safe_next, see_other, with_cookies};
use crate::auth::Caller;
use crate::cookies;
use crate::extract::{ApiForm, ApiJson, ApiQuery, RequestContext};
use crate::problem::Problem;
use crate::state::AppState;

/// How long the sign-in forms stay usable in one browser.
const PRE_SESSION_LIFETIME: time::Duration = time::Duration::hours(2);

#[derive(Template, WebTemplate)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    shell: Option<Shell>,
    passkeys: bool,
    csrf: String,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/mfa.html")]
struct MfaPage {
    shell: Option<Shell>,
    csrf: String,
    mfa_token: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The sign-in form. A browser already signed in goes straight on.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<NextQuery>,
) -> Result<Response, Problem> {
    let next = safe_next(query.next.as_deref());
    if let Some(secret) = cookies::read(&headers, cookies::SESSION)
        && state.identity.authenticate_browser(&secret).await.is_ok()
    {
        return Ok(see_other(&next));
    }
    // The form's token comes from the pre-session cookie; make one if the browser has none.
    let (pre, set_cookie) = match cookies::read(&headers, cookies::PRE_SESSION) {
        Some(pre) => (pre, None),
        None => {
            let pre = SecretToken::generate()?.expose().to_owned();
            let cookie = cookies::set(
                cookies::PRE_SESSION,
                &pre,
                super::PREFIX,
                PRE_SESSION_LIFETIME,
                state.config.behind_tls(),
            );
            (pre, Some(cookie))
        }
    };
    let page = SignInPage {
        shell: None,
        passkeys: state.identity.passkeys_available(),
        csrf: plinth_identity::csrf_token(&pre),
        email: String::new(),
        next,
        error: None,
    };
    Ok(with_cookies(page.into_response(), set_cookie))
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: SecretString,
    #[serde(default)]
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    ApiForm(form): ApiForm<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let csrf = csrf::token_of(&headers).unwrap_or_default();
    let again = |status: StatusCode, error: String| {
        let page = SignInPage {
            shell: None,
            passkeys: state.identity.passkeys_available(),
            csrf: csrf.clone(),
            email: form.email.clone(),
            next: next.clone(),
            error: Some(error),
        };
        (status, page).into_response()
    };
    let outcome = state
        .identity
        .login::<BrowserSession>(&form.email, form.password.clone(), &context.client())
        .await;
    match outcome {
        Ok(LoginOutcome::SignedIn(session)) => signed_in(&state, &session, &next),
        Ok(LoginOutcome::MfaRequired(challenge)) => {
            mfa_page(csrf, next, &challenge, None, StatusCode::OK)
        }
        // A locked account gets the same words as a wrong password (anything else would
        // tell a guesser which passwords are right), with the rule that explains both.
        Err(IdentityError::InvalidCredentials) => again(
            StatusCode::UNAUTHORIZED,
            format!(
                "The e-mail address or the password is not right. After {} failed attempts in a row the account is locked for a while: wait a few minutes, or reset your password.",
                state.config.lockout_threshold
            ),
        ),
        Err(IdentityError::RateLimited(wait)) => {
            again(StatusCode::TOO_MANY_REQUESTS, too_many(wait))
        }
        Err(e) => error_page(e.into()),
    }
}

fn too_many(wait: std::time::Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    format!("Too many attempts. Try again in {minutes} min.")
}

fn mfa_page(
    csrf: String,
    next: String,
    challenge: &MfaChallenge,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let page = MfaPage {
        shell: None,
        csrf,
        mfa_token: challenge.mfa_token.clone(),
        next,
        error,
    };
    (status, page).into_response()
}

#[derive(Deserialize)]
pub struct MfaForm {
    mfa_token: String,
    code: String,
    #[serde(default)]
    next: Option<String>,
}

/// The second step: a code from the authenticator app, or a recovery code.
pub async fn submit_mfa(
    State(state): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    ApiForm(form): ApiForm<MfaForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let csrf = csrf::token_of(&headers).unwrap_or_default();
    let challenge = MfaChallenge {
        mfa_token: form.mfa_token.clone(),
        methods: Vec::new(),
        expires_in: 0,
    };
    let result = state
        .identity
        .verify_mfa::<BrowserSession>(&form.mfa_token, form.code.trim(), &context.client())
        .await;
    match result {
        Ok(session) => signed_in(&state, &session, &next),
        Err(IdentityError::InvalidCode) => mfa_page(
            csrf,
            next,
            &challenge,
            Some(
                "That code is not right. Codes change every 30 seconds; use the current one."
                    .into(),
            ),
            StatusCode::UNAUTHORIZED,
        ),
        Err(IdentityError::RateLimited(wait)) => mfa_page(
            csrf,
            next,
            &challenge,
            Some(too_many(wait)),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(IdentityError::InvalidToken) => {
            let page = SignInPage {
                shell: None,
                passkeys: state.identity.passkeys_available(),
                csrf,
                email: String::new(),
                next,
                error: Some("The sign-in took too long. Start again.".into()),
            };
            (StatusCode::BAD_REQUEST, page).into_response()
        }
        Err(e) => error_page(e.into()),
    }
}

#[derive(Deserialize)]
pub struct FinishPasskey {
    challenge_id: uuid::Uuid,
    credential: Box<PublicKeyCredential>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Serialize)]
pub struct SignedIn {
    next: String,
}

/// Finishes a passwordless sign-in: the session cookie, and where the script goes next.
pub async fn finish_passkey(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<FinishPasskey>,
) -> Result<Response, Problem> {
    let session = state
        .identity
        .finish_passkey_sign_in::<BrowserSession>(
            body.challenge_id,
            &body.credential,
            &context.client(),
        )
        .await?;
    let next = safe_next(body.next.as_deref());
    Ok(with_cookies(
        Json(SignedIn { next }).into_response(),
        session_cookies(&state, &session),
    ))
}

/// The session cookie, and the end of the pre-session one (it has done its job).
fn session_cookies(state: &AppState, session: &BrowserSession) -> [HeaderValue; 2] {
    let secure = state.config.behind_tls();
    [
        cookies::set(
            cookies::SESSION,
            session.secret(),
            "/",
            session.max_age,
            secure,
        ),
        cookies::clear(cookies::PRE_SESSION, super::PREFIX, secure),
    ]
}

/// Sets the session cookie and goes on; the pre-session cookie has done its job.
fn signed_in(state: &AppState, session: &BrowserSession, next: &str) -> Response {
    with_cookies(see_other(next), session_cookies(state, session))
}

/// Ends this console session.
pub async fn sign_out(
    State(state): State<AppState>,
    context: RequestContext,
    Caller(me): Caller,
) -> Response {
    if let Err(e) = state.identity.logout(&me, &context.client()).await {
        return error_page(e.into());
    }
    with_cookies(see_other(super::SIGN_IN), [super::clear_session(&state)])
}
