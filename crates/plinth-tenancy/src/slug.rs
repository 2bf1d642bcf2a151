//! Slugs: DNS-safe names for tenants and workspaces (they appear in URLs and, for
//! tenants, may become subdomains).

use std::fmt;

use plinth_core::FieldErrors;

/// Names that would collide with Plinth's own paths or mislead users.
const RESERVED: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "console",
    "dashboard",
    "docs",
    "help",
    "internal",
    "login",
    "logout",
    "mail",
    "me",
    "metrics",
    "new",
    "null",
    "platform",
    "plinth",
    "portal",
    "root",
    "settings",
    "setup",
    "signup",
    "static",
    "status",
    "support",
    "system",
    "undefined",
    "www",
];

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// 3–63 characters of `a-z`, `0-9` and single hyphens, starting with a letter.
    pub fn parse(field: &str, raw: &str, check_reserved: bool) -> Result<Slug, FieldErrors> {
        let text = raw.trim();
        let invalid = |detail: &str| FieldErrors::single(field, "invalid_slug", detail);
        if text.len() < 3 || text.len() > 63 {
            return Err(invalid("use 3 to 63 characters"));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("use lower-case letters, digits and hyphens only"));
        }
        if !text.as_bytes()[0].is_ascii_lowercase() {
            return Err(invalid("start with a letter"));
        }
        if text.ends_with('-') || text.contains("--") {
            return Err(invalid("do not end with a hyphen or use two in a row"));
        }
        if check_reserved && RESERVED.contains(&text) {
            return Err(FieldErrors::single(
                field,
                "reserved",
                "this name is reserved; choose another",
            ));
        }
        Ok(Slug(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels_and_refuses_the_rest() {
        for good in ["acme", "acme-corp", "a1b2c3", "x".repeat(63).as_str()] {
            assert!(Slug::parse("slug", good, true).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Acme",
            "1acme",
            "acme-",
            "ac--me",
            "acme corp",
            "acmé",
            &"x".repeat(64),
        ] {
            assert!(Slug::parse("slug", bad, true).is_err(), "{bad}");
        }
        let reserved = Slug::parse("slug", "admin", true).unwrap_err();
        assert_eq!(reserved.iter().next().unwrap().code, "reserved");
        assert!(
            Slug::parse("slug", "admin", false).is_ok(),
            "workspaces may use any valid name"
        );
    }
}
