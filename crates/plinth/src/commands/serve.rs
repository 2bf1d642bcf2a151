use std::time::Instant;

use plinth_core::config::Config;
use plinth_server::AppState;
use tokio::net::TcpListener;

pub async fn run(config: Config, started: Instant) -> Result<(), String> {
    let db = super::open_migrated(&config).await?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let base_url = config
        .public_url
        .clone()
        .map_or_else(|| format!("http://{address}"), |u| u.trim_end_matches('/').to_owned());
    let identity = super::identity(&config, &db, base_url.clone()).await?;
    let state = AppState::new(config, db.clone(), identity);
    let (router, _) = plinth_server::build(state.clone());
    plinth_server::background::connect_events(&state).await?;
    plinth_server::background::spawn(&state)?;

    tracing::info!(
        address = %address,
        database = db.display_url(),
        startup_ms = started.elapsed().as_secs_f64() * 1000.0,
        "ready"
    );
    let listening = format!("http://{address}");
    if listening == base_url {
        say(&format!("Plinth listening on {listening} ({})", db.display_url()));
    } else {
        say(&format!(
            "Plinth listening on {listening} ({}), reached at {base_url}",
            db.display_url()
        ));
    }
    match state.setup.issue_token().await {
        Ok(Some(setup)) => {
            // Printed, never logged: the link is a credential.
            say(&format!(
                "\n  No administrator exists yet. Within {} minutes, open:\n    {base_url}/setup?token={}\n  \
                 or run: plinth admin create-superadmin --email you@example.com\n",
                setup.expires_in.whole_minutes(),
                setup.token.expose()
            ));
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot issue the setup link"),
    }
    plinth_server::serve(listener, router, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// Writes a line for the operator. A closed standard output (a detached terminal, a
/// reader that went away) must not stop the server, so write errors are ignored,
/// unlike with `println!`, which panics.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
