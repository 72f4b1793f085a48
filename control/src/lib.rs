//! Remote parameter control: what the engine may write to a plant, who may
//! ask and approve, and where each write request stands — without I/O and
//! without a clock (the caller gives the time to every call).
//!
//! - [`catalogue`]: the writable parameters (configuration
//!   `[[control.parameters]]`): per asset pattern, the type, bounds,
//!   largest step, read-back signal, roles and the two-person rule. Nothing
//!   outside it can be written.
//! - [`desk`]: the requests' state machine (requested → approved → sent →
//!   confirmed | unconfirmed; rejected; expired) and every refusal (bounds,
//!   step, stale source, role, self-approval, a write in flight, the rate
//!   limit, read-only mode). Each change is *planned* first and *committed*
//!   after the caller has recorded it in the audit trail, so nothing takes
//!   effect that the trail does not hold.
//! - [`signature`]: users' electronic signatures (21 CFR Part 11 spirit):
//!   a secret of their own, stored only as a salted argon2id hash, checked
//!   for every signed action, with a lockout after repeated failures.
//!
//! The output stage drives the desk; the collector sends what it decides
//! (README, "Parameter control").

pub mod catalogue;
pub mod desk;
pub mod signature;

pub use catalogue::{AssetPattern, Catalogue, ParamSpec};
pub use desk::{Desk, Req, MAX_KEPT_REQUESTS};
pub use signature::{hash_secret, Signatures, VerifyError};

/// What can go wrong in this crate (outside the desk's refusals, which are
/// answers to users, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A signature hash that is not an argon2 PHC string.
    #[error("not an argon2 hash (PHC string `$argon2id$…`): {0}")]
    BadHash(String),
    /// Hashing failed (the secret is too long, the parameters are wrong).
    #[error("cannot hash the secret: {0}")]
    Hash(String),
}
