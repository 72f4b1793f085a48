//! Electronic signatures, in the spirit of 21 CFR Part 11 (§11.200,
//! §11.300): each user signs a parameter action with a secret of their own
//! (not their broker password), which the engine holds only as a salted
//! argon2id hash (a PHC string, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`,
//! made by `ctower signature hash`). Repeated wrong secrets lock the user's
//! signing for a while (an attempt at unauthorised use is logged by the
//! caller and answered, never silently ignored).

use crate::ControlError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::collections::BTreeMap;

/// Wrong secrets in a row before a user's signing is locked.
pub const MAX_FAILURES: u32 = 5;
/// How long a locked user cannot sign, ms.
pub const LOCKOUT_MS: i64 = 15 * 60_000;
/// Longest secret taken (argon2 takes more, a request need not).
pub const MAX_SECRET: usize = 256;
/// Largest argon2 costs a configured hash may ask (64 MiB, 8 passes, 4
/// lanes): each check runs on the engine's output thread.
pub const MAX_M_COST_KIB: u32 = 65_536;
/// See [`MAX_M_COST_KIB`].
pub const MAX_T_COST: u32 = 8;
/// See [`MAX_M_COST_KIB`].
pub const MAX_P_COST: u32 = 4;

/// Hashes `secret` with a fresh random salt (argon2id, the crate's default
/// parameters: 19 MiB, 2 passes): the PHC string to put in the
/// configuration.
pub fn hash_secret(secret: &str) -> Result<String, ControlError> {
    if secret.is_empty() || secret.len() > MAX_SECRET {
        return Err(ControlError::Hash(format!(
            "a signature secret has 1 to {MAX_SECRET} bytes"
        )));
    }
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ControlError::Hash(e.to_string()))
}

/// Checks that `phc` is an argon2 PHC string (at configuration load).
pub fn check_hash(phc: &str) -> Result<(), ControlError> {
    let h = PasswordHash::new(phc).map_err(|e| ControlError::BadHash(e.to_string()))?;
    if !h.algorithm.as_str().starts_with("argon2") || h.hash.is_none() {
        return Err(ControlError::BadHash(format!(
            "algorithm `{}`, not argon2",
            h.algorithm
        )));
    }
    // Every signed action costs one hash on the engine's output thread: a
    // hash with huge parameters would stall it.
    let p = argon2::Params::try_from(&h).map_err(|e| ControlError::BadHash(e.to_string()))?;
    if p.m_cost() > MAX_M_COST_KIB || p.t_cost() > MAX_T_COST || p.p_cost() > MAX_P_COST {
        return Err(ControlError::BadHash(format!(
            "its cost (m={} KiB, t={}, p={}) is above m={MAX_M_COST_KIB}, t={MAX_T_COST}, p={MAX_P_COST}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        )));
    }
    Ok(())
}

/// Why a signature was not accepted (the reply says it; the caller logs it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The user has no signature hash in the configuration.
    #[error("user `{0}` has no signature enrolled (commands.users[].signature_hash)")]
    NotEnrolled(String),
    /// No secret came with the action.
    #[error("this action needs your signature")]
    Missing,
    /// The secret is wrong.
    #[error("the signature does not match ({left} attempt(s) left before signing is locked)")]
    Wrong {
        /// Attempts left.
        left: u32,
    },
    /// Too many wrong secrets.
    #[error("signing is locked for user `{user}` after {MAX_FAILURES} wrong signatures, for {secs} s more")]
    Locked {
        /// Who.
        user: String,
        /// For how long yet.
        secs: i64,
    },
}

/// The users' signature hashes and their failures.
#[derive(Debug, Clone, Default)]
pub struct Signatures {
    hashes: BTreeMap<String, String>,
    /// user → (wrong secrets in a row, locked until ms).
    failures: BTreeMap<String, (u32, i64)>,
}

impl Signatures {
    /// `hashes`: user → PHC string (already checked with [`check_hash`]).
    pub fn new(hashes: BTreeMap<String, String>) -> Self {
        Signatures {
            hashes,
            failures: BTreeMap::new(),
        }
    }

    /// Checks `user`'s `secret` at `now_ms`. A success clears the failures;
    /// the fifth wrong secret in a row locks signing for [`LOCKOUT_MS`].
    /// Costs one argon2 hash (tens of ms): the caller does it for signed
    /// actions only, after every cheaper check.
    pub fn verify(
        &mut self,
        user: &str,
        secret: Option<&str>,
        now_ms: i64,
    ) -> Result<(), VerifyError> {
        let Some(phc) = self.hashes.get(user) else {
            return Err(VerifyError::NotEnrolled(user.to_string()));
        };
        if let Some((n, until)) = self.failures.get(user) {
            if *n >= MAX_FAILURES && *until > now_ms {
                return Err(VerifyError::Locked {
                    user: user.to_string(),
                    secs: (until - now_ms + 999) / 1000,
                });
            }
        }
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or(VerifyError::Missing)?;
        let ok = secret.len() <= MAX_SECRET
            && PasswordHash::new(phc).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &h)
                    .is_ok()
            });
        if ok {
            self.failures.remove(user);
            return Ok(());
        }
        let entry = self.failures.entry(user.to_string()).or_insert((0, 0));
        // A lock that ran out starts a new count.
        if entry.0 >= MAX_FAILURES {
            *entry = (0, 0);
        }
        entry.0 += 1;
        if entry.0 >= MAX_FAILURES {
            entry.1 = now_ms + LOCKOUT_MS;
            return Err(VerifyError::Locked {
                user: user.to_string(),
                secs: LOCKOUT_MS / 1000,
            });
        }
        Err(VerifyError::Wrong {
            left: MAX_FAILURES - entry.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_verifies_against_its_salted_hash_only() {
        let a = hash_secret("correct horse").unwrap();
        let b = hash_secret("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted: the same secret hashes differently");
        assert!(!a.contains("correct horse"));
        check_hash(&a).unwrap();
        assert!(check_hash("$2b$12$abcdefghijklmnopqrstuv").is_err());
        assert!(check_hash("plain text").is_err());
        let greedy = a.replace("m=19456,t=2,p=1", "m=4194304,t=2,p=1");
        assert!(
            check_hash(&greedy)
                .unwrap_err()
                .to_string()
                .contains("cost"),
            "{greedy}"
        );
        let mut s = Signatures::new([("alice".to_string(), a)].into());
        assert_eq!(s.verify("alice", Some("correct horse"), 0), Ok(()));
        assert_eq!(
            s.verify("alice", Some("wrong"), 0),
            Err(VerifyError::Wrong { left: 4 })
        );
        assert_eq!(s.verify("alice", None, 0), Err(VerifyError::Missing));
        assert_eq!(
            s.verify("bob", Some("x"), 0),
            Err(VerifyError::NotEnrolled("bob".into()))
        );
    }

    #[test]
    fn five_wrong_secrets_lock_signing_for_a_while() {
        let mut s = Signatures::new([("alice".to_string(), hash_secret("s3cret").unwrap())].into());
        for i in 0..4 {
            assert!(matches!(
                s.verify("alice", Some("nope"), i),
                Err(VerifyError::Wrong { .. })
            ));
        }
        assert!(matches!(
            s.verify("alice", Some("nope"), 10),
            Err(VerifyError::Locked { .. })
        ));
        // Even the right secret is refused while locked.
        assert!(matches!(
            s.verify("alice", Some("s3cret"), 20),
            Err(VerifyError::Locked { .. })
        ));
        assert_eq!(s.verify("alice", Some("s3cret"), 10 + LOCKOUT_MS), Ok(()));
    }
}
