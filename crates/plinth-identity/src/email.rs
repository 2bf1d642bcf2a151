//! E-mail addresses, parsed once at the edge. Uniqueness is decided on the normalised
//! form (trimmed, lower-cased), so `Ada@Example.com` and `ada@example.com` are one account.

use std::fmt;

use plinth_core::FieldErrors;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    /// As the user typed it, trimmed (kept for display).
    display: String,
    normalized: String,
}

pub const MAX_EMAIL_LEN: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Email, FieldErrors> {
        let field = "email";
        let display = raw.trim();
        let invalid = |detail: &str| FieldErrors::single(field, "invalid_email", detail);
        if display.is_empty() {
            return Err(FieldErrors::single(field, "required", "an e-mail address is required"));
        }
        if display.len() > MAX_EMAIL_LEN {
            return Err(FieldErrors::single(
                field,
                "too_long",
                "an e-mail address has at most 254 characters",
            ));
        }
        if display.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("an e-mail address cannot contain spaces or control characters"));
        }
        let Some((local, domain)) = display.rsplit_once('@') else {
            return Err(invalid("an e-mail address looks like name@example.com"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid("the part before @ must be 1 to 64 characters"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return Err(invalid("the domain after @ is not valid"));
        }
        Ok(Email {
            display: display.to_owned(),
            normalized: display.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    pub fn local_part(&self) -> &str {
        self.normalized.rsplit_once('@').map_or("", |(l, _)| l)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.display)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_for_comparison_but_keeps_display() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized(), "ada.lovelace@example.com");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
