use std::io::BufRead;

use plinth_core::Actor;
use plinth_core::config::Config;
use plinth_identity::{NewSuperAdmin, PasswordHasher, Setup, SetupVia};
use secrecy::{ExposeSecret, SecretString};

pub async fn create_superadmin(
    config: &Config,
    email: String,
    display_name: Option<String>,
    password_stdin: bool,
) -> Result<(), String> {
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        let first = rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read the password: {e}"))?;
        let second = rpassword::prompt_password("Repeat it: ").map_err(|e| format!("cannot read the password: {e}"))?;
        if first != second {
            return Err("the two passwords differ".into());
        }
        SecretString::from(first)
    };
    if password.expose_secret().is_empty() {
        return Err("the password is empty".into());
    }
    let db = super::open_migrated(config).await?;
    let setup = Setup::new(db.clone(), PasswordHasher::default());
    let user = setup
        .create_super_admin(
            &Actor::system(),
            NewSuperAdmin {
                email,
                password,
                display_name,
            },
            SetupVia::Cli,
        )
        .await
        .map_err(|e| e.to_string())?;
    println!("Created super-admin {} ({}).", user.email, user.id);
    db.close().await;
    Ok(())
}
