//! The tenant a caller belongs to. It comes only from the caller's API key.

use std::fmt;

/// A tenant id: 1..64 characters of ASCII letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > Self::MAX_CHARS {
            return Err(format!(
                "a tenant id must be 1 to {} characters",
                Self::MAX_CHARS
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("a tenant id may hold only ASCII letters, digits, '-' and '_'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_id_with_a_space_is_rejected() {
        assert!(TenantId::parse("acme corp").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse(&"a".repeat(65)).is_err());
        assert_eq!(TenantId::parse("acme-1_x").unwrap().as_str(), "acme-1_x");
    }
}
