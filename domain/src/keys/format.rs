//! The key format: `<prefix>_<live|test>_<sk|rk>_<random><checksum>`.
//!
//! The random part is 192 bits in base62 (33 characters); the checksum is
//! the CRC32 of everything before it, in base62 (6 characters), as GitHub's
//! secret scanning partner program recommends. A mistyped or made-up key
//! fails the checksum, so it is refused without a lookup. Keys are kept as
//! their SHA-256 only.

use sha2::{Digest, Sha256};

use super::{KeyKind, Mode};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Base62 characters of the random part: 62^33 > 2^192.
pub const RANDOM_LEN: usize = 33;
/// Base62 characters of the checksum: 62^6 > 2^32.
pub const CHECKSUM_LEN: usize = 6;
/// Random characters shown in the display prefix.
const SHOWN: usize = 6;
/// The longest deployment prefix.
pub const MAX_PREFIX_LEN: usize = 16;

/// A key's SHA-256: what the log, the read models and the index hold.
pub type KeyHash = [u8; 32];

/// A freshly minted key: the plaintext (shown once), its display prefix and
/// its hash.
pub struct Minted {
    /// The whole key. Never logged, stored or put in an event.
    pub plaintext: String,
    /// The public start, for display.
    pub prefix: String,
    /// SHA-256 of `plaintext`.
    pub hash: KeyHash,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Whether `prefix` can start keys: 1 to 16 of `a-z0-9`.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn kind_tag(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Secret => "sk",
        KeyKind::Restricted => "rk",
    }
}

/// Encodes 24 bytes as 33 base62 characters (big-endian, zero-padded).
fn base62_random(bytes: &[u8; 24]) -> [u8; RANDOM_LEN] {
    let mut n = *bytes;
    let mut out = [b'0'; RANDOM_LEN];
    for slot in out.iter_mut().rev() {
        // Long division of the 192-bit number by 62.
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 62) as u8;
            rem = cur % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    out
}

fn base62_checksum(crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut n = crc;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Mints the key `secret` encodes, for `prefix` (the deployment's), `mode`
/// and `kind`. The same secret gives the same key, so a retried command
/// answers the key whose hash the first attempt recorded.
pub fn mint(prefix: &str, mode: Mode, kind: KeyKind, secret: &[u8; 32]) -> Minted {
    mint_tagged(
        prefix,
        &format!("{}_{}", mode.as_str(), kind_tag(kind)),
        secret,
    )
}

/// Mints `<prefix>_<tag>_<random><checksum>` from `secret`: the API key
/// format with another tag (`cs` for an OAuth client secret, which is
/// therefore never mistaken for a key).
pub fn mint_tagged(prefix: &str, tag: &str, secret: &[u8; 32]) -> Minted {
    let mut random = [0u8; 24];
    random.copy_from_slice(&secret[..24]);
    let random = base62_random(&random);
    let mut plaintext = format!("{prefix}_{tag}_");
    let shown_at = plaintext.len();
    plaintext.extend(random.iter().map(|&b| char::from(b)));
    let checksum = base62_checksum(crc32fast::hash(plaintext.as_bytes()));
    plaintext.extend(checksum.iter().map(|&b| char::from(b)));
    let prefix = plaintext[..shown_at + SHOWN].to_owned();
    let hash = hash(&plaintext);
    Minted {
        plaintext,
        prefix,
        hash,
    }
}

/// What a well-formed key says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Its mode.
    pub mode: Mode,
    /// Its kind.
    pub kind: KeyKind,
}

/// Checks `key`'s shape and checksum for the deployment `prefix`: `None`
/// for anything that is not a key this deployment could have issued. Never
/// looks anything up.
pub fn parse(prefix: &str, key: &str) -> Option<Shape> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('_')?;
    let (mode, rest) = rest.split_once('_')?;
    let (kind, body) = rest.split_once('_')?;
    let mode = match mode {
        "live" => Mode::Live,
        "test" => Mode::Test,
        _ => return None,
    };
    let kind = match kind {
        "sk" => KeyKind::Secret,
        "rk" => KeyKind::Restricted,
        _ => return None,
    };
    if body.len() != RANDOM_LEN + CHECKSUM_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let split = key.len() - CHECKSUM_LEN;
    let expected = base62_checksum(crc32fast::hash(&key.as_bytes()[..split]));
    (key.as_bytes()[split..] == expected).then_some(Shape { mode, kind })
}

/// SHA-256 of a key.
pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// Parses a hash written as 64 hex digits.
pub fn parse_hash(hex: &str) -> Option<KeyHash> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A hash as 64 lower-case hex digits.
pub fn hash_hex(hash: &KeyHash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The longest visible start an imported key may give.
pub const MAX_IMPORTED_PREFIX: usize = 32;

/// The family of an imported key's visible start: up to and including its
/// last `_` (`sk_live_` of `sk_live_4eC39H`), else its first four
/// characters. Keys in another format than this deployment's are looked up
/// only when they start like a family imported before.
pub fn family_of(prefix: &str) -> &str {
    match prefix.rfind('_') {
        Some(i) => &prefix[..=i],
        None => prefix.get(..4).unwrap_or(prefix),
    }
}

/// The starts of `key` that could be a family ([`family_of`] of a visible
/// start of at most [`MAX_IMPORTED_PREFIX`] characters): its first four
/// characters, and each start ending at an `_` within that length. At most
/// 33, whatever the key: a lookup by family costs a bounded number of
/// probes, however many families were imported.
pub fn family_candidates(key: &str) -> impl Iterator<Item = &str> {
    let head = &key.as_bytes()[..key.len().min(MAX_IMPORTED_PREFIX)];
    key.get(..4).into_iter().chain(
        head.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'_')
            .filter_map(|(i, _)| key.get(..=i)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_probed_for_its_families_with_a_bounded_number_of_starts() {
        assert_eq!(family_of("sk_live_4eC39H"), "sk_live_");
        assert_eq!(family_of("abcd1234"), "abcd");
        let starts: Vec<&str> = family_candidates("sk_live_4eC39HqLyjWDarjtT1").collect();
        assert_eq!(starts, ["sk_l", "sk_", "sk_live_"]);
        // Every family a visible start can have is among its key's starts.
        for prefix in ["sk_live_4eC3", "pk_test_", "abcd1234", "a_b_c_d_e"] {
            let key = format!("{prefix}rest_of_the_key");
            assert!(
                family_candidates(&key).any(|s| s == family_of(prefix)),
                "{prefix}"
            );
        }
        let underscores = "_".repeat(200);
        assert_eq!(
            family_candidates(&underscores).count(),
            1 + MAX_IMPORTED_PREFIX
        );
    }

    #[test]
    fn a_minted_key_has_the_documented_shape_and_parses() {
        let k = mint("gh", Mode::Test, KeyKind::Secret, &[7; 32]);
        assert!(k.plaintext.starts_with("gh_test_sk_"));
        assert_eq!(
            k.plaintext.len(),
            "gh_test_sk_".len() + RANDOM_LEN + CHECKSUM_LEN
        );
        assert_eq!(k.prefix, k.plaintext[..17]);
        assert_eq!(k.hash, hash(&k.plaintext));
        assert_eq!(
            parse("gh", &k.plaintext),
            Some(Shape {
                mode: Mode::Test,
                kind: KeyKind::Secret
            })
        );
        let live = mint("acme", Mode::Live, KeyKind::Restricted, &[9; 32]);
        assert!(live.plaintext.starts_with("acme_live_rk_"));
        assert!(parse("acme", &live.plaintext).is_some());
    }

    #[test]
    fn the_same_secret_mints_the_same_key_and_others_differ() {
        let a = mint("gh", Mode::Test, KeyKind::Secret, &[1; 32]);
        let b = mint("gh", Mode::Test, KeyKind::Secret, &[1; 32]);
        let c = mint("gh", Mode::Test, KeyKind::Secret, &[2; 32]);
        assert_eq!(a.plaintext, b.plaintext);
        assert_ne!(a.plaintext, c.plaintext);
    }

    #[test]
    fn every_single_character_typo_fails_the_checksum_or_the_shape() {
        let k = mint("gh", Mode::Live, KeyKind::Secret, &[3; 32]).plaintext;
        let start = "gh_live_sk_".len();
        for i in start..k.len() {
            let mut bytes = k.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).expect("ascii");
            assert_eq!(parse("gh", &typo), None, "typo at {i}");
        }
        // Another mode or kind in front of the same body fails too.
        assert_eq!(parse("gh", &k.replace("_live_", "_test_")), None);
        assert_eq!(parse("gh", &k.replace("_sk_", "_rk_")), None);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let k = mint("gh", Mode::Test, KeyKind::Secret, &[5; 32]).plaintext;
        for bad in [
            "",
            "gh",
            "gh_test_sk_",
            "xx_test_sk_0000",
            &k[..k.len() - 1],
            &format!("{k}0"),
            &k.replace("gh_", "gx_"),
            &k.replace("_test_", "_prod_"),
            &format!("{}é{}", &k[..20], &k[22..]),
        ] {
            assert_eq!(parse("gh", bad), None, "{bad:?}");
        }
        assert_eq!(parse("acme", &k), None, "another deployment's prefix");
    }

    #[test]
    fn the_random_part_carries_the_secrets_entropy() {
        // 192 bits: every one of the first 24 bytes changes the key.
        let base = mint("gh", Mode::Test, KeyKind::Secret, &[0; 32]).plaintext;
        for i in 0..24 {
            let mut s = [0u8; 32];
            s[i] = 1;
            assert_ne!(mint("gh", Mode::Test, KeyKind::Secret, &s).plaintext, base);
        }
        assert_eq!(
            &base["gh_test_sk_".len()..][..RANDOM_LEN],
            "0".repeat(RANDOM_LEN)
        );
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = hash("gh_test_sk_x");
        assert_eq!(parse_hash(&hash_hex(&h)), Some(h));
        assert_eq!(parse_hash("zz"), None);
        assert_eq!(parse_hash(&"g".repeat(64)), None);
    }
}
