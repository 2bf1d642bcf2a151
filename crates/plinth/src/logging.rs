use plinth_core::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Logs go to standard error; standard output is kept for command output (the setup
/// link, `plinth config`, migration lists), so scripts can read it.
pub fn init(config: &Config) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|e| format!("invalid log filter {:?} (PLINTH_LOG): {e}", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    result.map_err(|e| format!("cannot initialise logging: {e}"))
}
