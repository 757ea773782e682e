//! API keys: `cxm_<key id>_<secret>`. The key id is public (it names the key in listings and
//! finds its row); the whole key is stored only as its SHA-256 hash and compared in constant
//! time.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every key begins with.
pub const KEY_PREFIX: &str = "cxm_";
const PREFIX: &str = KEY_PREFIX;
const KEY_ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A freshly made key: shown once, then only its hash is kept.
pub struct NewApiKey {
    pub key_id: String,
    pub secret: String,
    pub hash: [u8; 32],
}

impl NewApiKey {
    /// A new random key: 64 bits of id and 256 bits of secret from the OS generator.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut id = [0u8; KEY_ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let key_id = hex::encode(id);
        let secret = format!("{PREFIX}{key_id}_{}", hex::encode(secret));
        let hash = hash(&secret);
        Self {
            key_id,
            secret,
            hash,
        }
    }
}

/// A key as presented by a caller, split into its public id and the whole text.
#[derive(Debug)]
pub struct PresentedKey<'a> {
    pub key_id: &'a str,
    text: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// Splits `cxm_<id>_<secret>`; anything else is not a key of ours.
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let (key_id, secret) = rest.split_once('_')?;
        let well_formed = key_id.len() == KEY_ID_BYTES * 2
            && secret.len() == SECRET_BYTES * 2
            && key_id
                .bytes()
                .chain(secret.bytes())
                .all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(Self { key_id, text })
    }

    /// Whether this key hashes to `stored`, compared in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        hash(self.text).as_slice().ct_eq(stored).into()
    }
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_its_own_hash() {
        let key = NewApiKey::generate();
        let presented = PresentedKey::parse(&key.secret).expect("well formed");
        assert_eq!(presented.key_id, key.key_id);
        assert!(presented.matches(&key.hash));
    }

    #[test]
    fn a_key_with_one_changed_character_does_not_match() {
        let key = NewApiKey::generate();
        let mut tampered = key.secret.clone();
        let last = if tampered.ends_with('0') { "1" } else { "0" };
        tampered.replace_range(tampered.len() - 1.., last);
        let presented = PresentedKey::parse(&tampered).expect("still well formed");
        assert!(!presented.matches(&key.hash));
    }

    #[test]
    fn text_that_is_not_a_key_is_refused() {
        assert!(PresentedKey::parse("hunter2").is_none());
        assert!(PresentedKey::parse("cxm_abc_def").is_none());
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(NewApiKey::generate().secret, NewApiKey::generate().secret);
    }
}
