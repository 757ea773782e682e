//! What an API key may do: `read` (metrics and lists), `write` (records), `admin` (both,
//! plus tenant administration).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?} (expected read, write or admin)"
            )),
        }
    }
}

/// The set of scopes of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes {
    read: bool,
    write: bool,
    admin: bool,
}

impl Scopes {
    /// Parses a comma-separated list such as `read,write`.
    pub fn parse_list(raw: &str) -> Result<Self, String> {
        let mut scopes = Scopes::default();
        for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
            scopes.insert(Scope::parse(part)?);
        }
        if scopes == Scopes::default() {
            return Err("at least one scope is required (read, write, admin)".into());
        }
        Ok(scopes)
    }

    /// Builds the set from stored names, skipping unknown ones.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut scopes = Scopes::default();
        for scope in names.into_iter().filter_map(|n| Scope::parse(n).ok()) {
            scopes.insert(scope);
        }
        scopes
    }

    fn insert(&mut self, scope: Scope) {
        match scope {
            Scope::Read => self.read = true,
            Scope::Write => self.write = true,
            Scope::Admin => self.admin = true,
        }
    }

    /// Admin grants every scope.
    pub fn allows(self, scope: Scope) -> bool {
        self.admin
            || match scope {
                Scope::Read => self.read,
                Scope::Write => self.write,
                Scope::Admin => false,
            }
    }

    pub fn names(self) -> Vec<&'static str> {
        [
            (self.read, Scope::Read),
            (self.write, Scope::Write),
            (self.admin, Scope::Admin),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| s.as_str())
        .collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_key_may_not_write_but_admin_may_do_anything() {
        let read = Scopes::parse_list("read").unwrap();
        assert!(read.allows(Scope::Read));
        assert!(!read.allows(Scope::Write));
        let admin = Scopes::parse_list("admin").unwrap();
        assert!(admin.allows(Scope::Write) && admin.allows(Scope::Read));
    }

    #[test]
    fn unknown_or_empty_scope_lists_are_rejected() {
        assert!(Scopes::parse_list("read,delete").is_err());
        assert!(Scopes::parse_list("").is_err());
        assert_eq!(
            Scopes::parse_list("write, read").unwrap().to_string(),
            "read,write"
        );
    }
}
