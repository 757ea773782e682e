//! Opaque page tokens (AIP-158). A token carries the keyset cursor and a fingerprint of the
//! tenant and the query it was issued for; reusing it with other parameters or another
//! tenant is INVALID_ARGUMENT.

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

/// Identifies the query a token belongs to: the tenant plus every parameter but paging.
pub fn fingerprint(tenant: &TenantId, query: &impl std::fmt::Debug) -> [u8; 16] {
    let digest = Sha256::digest(format!("{tenant}\n{query:?}").as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
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
        let fp = fingerprint(&tenant, &("range", 1));
        let cursor = Cursor {
            time: Utc::now(),
            id: "r-é".into(),
        };
        let token = encode(&cursor, fp);
        assert_eq!(decode(&token, fp).unwrap(), Some(cursor));
        assert!(decode(&token, fingerprint(&tenant, &("range", 2))).is_err());
        let other = TenantId::parse("t2").unwrap();
        assert!(decode(&token, fingerprint(&other, &("range", 1))).is_err());
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
