//! Opaque page tokens (AIP-158). A token carries the keyset cursor and a fingerprint of the
//! tenant and the query it was issued for; reusing it with other parameters or another
//! tenant is INVALID_ARGUMENT. The fingerprint hashes the query's fields one by one, each
//! with its length, so it changes only when a field does (not when a type's `Debug` text
//! would).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{domain::TenantId, error::Error, storage::Cursor};

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1000;

/// The page size of a request: 0 means the default; negative or above the maximum is an error.
pub fn page_size(raw: i32) -> Result<usize, Error> {
    match raw {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1.. if raw as usize <= MAX_PAGE_SIZE => Ok(raw as usize),
        _ => Err(Error::invalid(
            "page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE})"),
        )),
    }
}

/// Identifies the query a token belongs to: the tenant, what is listed, and every
/// parameter but paging, fed in field by field.
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn new(tenant: &TenantId, listing: &str) -> Self {
        Self(Sha256::new()).text(tenant.as_str()).text(listing)
    }

    /// One text field, length first, so that ("ab", "c") and ("a", "bc") differ.
    pub fn text(mut self, value: &str) -> Self {
        self.0.update((value.len() as u64).to_be_bytes());
        self.0.update(value.as_bytes());
        self
    }

    /// A list of texts, its length first.
    pub fn texts(mut self, values: &[String]) -> Self {
        self.0.update((values.len() as u64).to_be_bytes());
        values.iter().fold(self, |fp, v| fp.text(v))
    }

    /// Key-value pairs in key order, their number first.
    pub fn pairs(mut self, pairs: &std::collections::BTreeMap<String, String>) -> Self {
        self.0.update((pairs.len() as u64).to_be_bytes());
        pairs.iter().fold(self, |fp, (k, v)| fp.text(k).text(v))
    }

    /// An instant, to the nanosecond.
    pub fn time(self, t: DateTime<Utc>) -> Self {
        let nanos =
            i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
        self.text(&nanos.to_string())
    }

    pub fn finish(self) -> [u8; 16] {
        let digest = self.0.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        out
    }
}

/// `fingerprint (16 bytes) | seconds (8) | nanos (4) | id`, base64url.
pub fn encode(cursor: &Cursor, fingerprint: [u8; 16]) -> String {
    let mut bytes = Vec::with_capacity(28 + cursor.id.len());
    bytes.extend_from_slice(&fingerprint);
    bytes.extend_from_slice(&cursor.time.timestamp().to_be_bytes());
    bytes.extend_from_slice(&cursor.time.timestamp_subsec_nanos().to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a token back; None for an empty token (the first page).
pub fn decode(token: &str, fingerprint: [u8; 16]) -> Result<Option<Cursor>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid(
            "page_token",
            "is not a token of this query; start again without it",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if bytes.len() < 28 || bytes[..16] != fingerprint {
        return Err(invalid());
    }
    let seconds = i64::from_be_bytes(bytes[16..24].try_into().map_err(|_| invalid())?);
    let nanos = u32::from_be_bytes(bytes[24..28].try_into().map_err(|_| invalid())?);
    let time: DateTime<Utc> = DateTime::from_timestamp(seconds, nanos).ok_or_else(invalid)?;
    let id = String::from_utf8(bytes[28..].to_vec()).map_err(|_| invalid())?;
    Ok(Some(Cursor { time, id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_for_the_same_query_only() {
        let tenant = TenantId::parse("t1").unwrap();
        let fingerprint = |tenant: &TenantId, what: &str, n: &str| {
            Fingerprint::new(tenant, what).text(n).finish()
        };
        let fp = fingerprint(&tenant, "range", "1");
        let cursor = Cursor {
            time: Utc::now(),
            id: "r-é".into(),
        };
        let token = encode(&cursor, fp);
        assert_eq!(decode(&token, fp).unwrap(), Some(cursor));
        assert!(decode(&token, fingerprint(&tenant, "range", "2")).is_err());
        assert!(decode(&token, fingerprint(&tenant, "range1", "")).is_err());
        let other = TenantId::parse("t2").unwrap();
        assert!(decode(&token, fingerprint(&other, "range", "1")).is_err());
        assert!(decode("garbage!", fp).is_err());
        assert_eq!(decode("", fp).unwrap(), None);
    }

    #[test]
    fn page_sizes_outside_one_to_a_thousand_are_rejected() {
        assert_eq!(page_size(0).unwrap(), 100);
        assert_eq!(page_size(1000).unwrap(), 1000);
        assert!(page_size(1001).is_err());
        assert!(page_size(-1).is_err());
    }
}
