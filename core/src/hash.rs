//! Stable content hashes. Job and sweep ids are derived from these, so the
//! byte layout fed to the hasher is part of the on-disk format: change it and
//! every stored result belongs to a different sweep.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Hash of a sequence of labelled parts; each part is length-prefixed so that
/// ("ab", "c") and ("a", "bc") differ.
pub fn parts(domain: &str, parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update((domain.len() as u64).to_le_bytes());
    h.update(domain.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Hash of a serde value through its canonical JSON form (object keys sorted).
pub fn json<T: serde::Serialize>(domain: &str, value: &T) -> Hash {
    let v = serde_json::to_value(value).expect("spec values serialize to JSON");
    parts(domain, &[v.to_string().as_bytes()])
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
