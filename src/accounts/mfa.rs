//! Two-factor authentication (TOTP, RFC 6238) for one's own account:
//! generate a secret (proving the password, the same check as a password
//! change), enable it with a code of that secret (receiving recovery
//! codes), disable it with a code or a recovery code; an admin's or the
//! operator's reset; and the second factor of a login
//! ([`Accounts::second_factor`]). Until `enable` succeeds nothing changes
//! but the pending secret.
//!
//! Wrong codes count toward the throttle as wrong passwords do (from the
//! same (username, address) and address counts); the store spends each
//! code's time step and each recovery code once, atomically. Neither a
//! secret nor a code reaches a log or an audit line.

use uuid::Uuid;

use super::users::OwnPassword;
use super::{AccountError, Accounts, Actor, Result, blocking, client_of, throttled};
use crate::audit::{self, Event, Origin, Subject};
use crate::domain::Secret;
use crate::mfa::{self, TotpSecret};
use crate::store::{MfaRefusal, OtpProof, UserRecord, UserView};
use crate::throttle::Attempt;

/// A new TOTP secret, shown once: the secret (base32) and the URL
/// authenticator apps scan.
pub struct NewTotpSecret {
    pub secret: String,
    pub otpauth_url: String,
}

/// What a login's one-time password came to.
pub(super) enum SecondFactor {
    /// None sent: the user is asked for one.
    Missing,
    /// Wrong, or already used.
    Wrong,
    /// Right, and now spent.
    Accepted,
}

/// The words for a code that is wrong or already used.
const WRONG_CODE: &str = "otp is incorrect";

fn refusal(why: MfaRefusal) -> AccountError {
    match why {
        MfaRefusal::AlreadyOn => {
            AccountError::Conflict("Two-factor authentication is already on: disable it first")
        }
        MfaRefusal::NotOn => AccountError::Conflict("Two-factor authentication is off"),
        MfaRefusal::NoPending => AccountError::Conflict(
            "No TOTP secret to enable: generate one first (POST /api/v1/auth/mfa/generate)",
        ),
        MfaRefusal::Spent => AccountError::Forbidden(WRONG_CODE),
    }
}

fn subject(user: &UserView) -> Subject<'_> {
    Subject {
        username: &user.username,
        id: user.id,
    }
}

/// The caller, who may only set up its own second factor.
fn me<'a>(actor: Actor<'a>) -> Result<&'a UserView> {
    actor.refuse_api_key("An API key cannot change two-factor authentication")?;
    match actor {
        Actor::User(me) => Ok(me),
        Actor::Operator => Err(AccountError::Forbidden(
            "Two-factor authentication is set up by the user itself",
        )),
    }
}

/// `otp` checked against `rec`'s second factor at `now`: the step of a
/// TOTP code of its secret, or the hash of what may be one of its recovery
/// codes (the store knows which are left); `None` when it cannot be right.
fn proof_of(rec: &UserRecord, otp: &str, now: u64) -> Option<OtpProof> {
    let secret = rec.mfa.secret.as_deref()?;
    if mfa::totp_code(otp).is_some() {
        let step = TotpSecret::from_base32(secret)?.verify(otp, now)?;
        return Some(OtpProof::Step {
            secret: secret.to_owned(),
            step,
        });
    }
    mfa::recovery_hash(otp).map(OtpProof::Recovery)
}

impl<'a> Accounts<'a> {
    /// The caller's record as stored (its view may be cached).
    fn own_record(&self, me: &UserView) -> Result<UserRecord> {
        self.store
            .user_by_id(me.id)?
            .ok_or_else(|| AccountError::Unauthorized("The token's user no longer exists".into()))
    }

    /// Starts checking a code of `username` from `origin`'s client: counted
    /// like a password check (429 when throttled), no hash involved.
    fn start_code_check(&self, origin: &Origin, username: &str) -> Result<Attempt<'a>> {
        let throttle = self.throttle.ok_or_else(|| {
            AccountError::Internal(anyhow::anyhow!(
                "a one-time password is checked only by the daemon, with its throttle"
            ))
        })?;
        throttle
            .attempt(client_of(origin), &crate::domain::fold(username))
            .map_err(|wait| throttled(self.trail(), origin, Some(username), wait))
    }

    /// A wrong code: counted, audited, refused (403).
    fn wrong_code(
        &self,
        attempt: Attempt<'_>,
        me: &UserView,
        origin: &Origin,
        during: &'static str,
    ) -> AccountError {
        attempt.fail();
        audit::emit(
            self.trail(),
            Event::OtpFailed {
                subject: subject(me),
                during,
            },
            origin,
        );
        AccountError::Forbidden(WRONG_CODE)
    }

    /// A new pending TOTP secret for the caller, who proves its password
    /// (throttled like a login; 403 when wrong). 409 while two-factor
    /// authentication is on. A later call replaces the pending secret;
    /// nothing else changes until [`Accounts::mfa_enable`].
    pub async fn mfa_generate(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        password: Secret,
    ) -> Result<NewTotpSecret> {
        let me = me(actor)?;
        if self.own_record(me)?.mfa.is_on() {
            return Err(refusal(MfaRefusal::AlreadyOn));
        }
        self.check_current_password(actor, me, origin, password, OwnPassword::MfaGenerate)
            .await?;
        let secret = TotpSecret::generate()?;
        let text = secret.to_base32();
        let (store, id, now, pending) = (self.store.clone(), me.id, self.clock.now(), text.clone());
        blocking(move || Ok(store.mfa_set_pending(id, &pending, now)?))
            .await?
            .map_err(refusal)?;
        Ok(NewTotpSecret {
            otpauth_url: mfa::otpauth_url(&secret, &me.username),
            secret: text,
        })
    }

    /// Turns two-factor authentication on with the pending secret, given a
    /// current code of it (403 when wrong, counted by the throttle); 409
    /// when it is on already or no secret is pending. Returns the recovery
    /// codes, which exist in plaintext only in this answer.
    pub async fn mfa_enable(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        otp: Secret,
    ) -> Result<Vec<String>> {
        let me = me(actor)?;
        let rec = self.own_record(me)?;
        if rec.mfa.is_on() {
            return Err(refusal(MfaRefusal::AlreadyOn));
        }
        let Some(pending) = rec.mfa.pending else {
            return Err(refusal(MfaRefusal::NoPending));
        };
        let attempt = self.start_code_check(origin, &me.username)?;
        let now = self.clock.now();
        let step = TotpSecret::from_base32(&pending).and_then(|s| s.verify(otp.expose(), now));
        let Some(step) = step else {
            return Err(self.wrong_code(attempt, me, origin, "enable"));
        };
        // A right code clears no failures: only a full login does.
        attempt.neutral();
        let (shown, hashes) = mfa::recovery_codes()?;
        let (store, id) = (self.store.clone(), me.id);
        blocking(move || Ok(store.mfa_enable(id, &pending, step, &hashes, now)?))
            .await?
            .map_err(refusal)?;
        audit::emit(self.trail(), Event::MfaEnabled(subject(me)), origin);
        Ok(shown)
    }

    /// Turns two-factor authentication off, given a current code or a
    /// recovery code (403 when wrong or used, counted by the throttle); 409
    /// when it is off.
    pub async fn mfa_disable(&self, actor: Actor<'_>, origin: &Origin, otp: Secret) -> Result<()> {
        let me = me(actor)?;
        let rec = self.own_record(me)?;
        if !rec.mfa.is_on() {
            return Err(refusal(MfaRefusal::NotOn));
        }
        let attempt = self.start_code_check(origin, &me.username)?;
        let now = self.clock.now();
        let outcome = match proof_of(&rec, otp.expose(), now) {
            None => Err(MfaRefusal::Spent),
            Some(proof) => {
                let (store, id) = (self.store.clone(), me.id);
                blocking(move || Ok(store.mfa_disable(id, &proof, now)?)).await?
            }
        };
        match outcome {
            Ok(_) => {
                attempt.neutral();
                audit::emit(self.trail(), Event::MfaDisabled(subject(me)), origin);
                Ok(())
            }
            Err(MfaRefusal::Spent) => Err(self.wrong_code(attempt, me, origin, "disable")),
            Err(other) => {
                attempt.neutral();
                Err(refusal(other))
            }
        }
    }

    /// Turns user `id`'s two-factor authentication off, dropping its
    /// pending secret and recovery codes, and revokes every token of the
    /// user (admins and operators: a user who lost its authenticator).
    pub async fn mfa_reset(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        id: Uuid,
    ) -> Result<UserRecord> {
        actor.require_admin()?;
        let (store, now) = (self.store.clone(), self.clock.now());
        let rec = blocking(move || Ok(store.mfa_reset(id, now)?)).await?;
        audit::emit(
            self.trail(),
            Event::MfaReset(Subject {
                username: &rec.username,
                id: rec.id,
            }),
            &actor.origin(origin),
        );
        Ok(rec)
    }

    /// The second factor of a login whose password was right, for a user
    /// with two-factor authentication on: a current TOTP code (its step
    /// later than the last accepted) or an unused recovery code, spent
    /// here. An empty `otp` is none. Audits a wrong one; the caller settles
    /// the throttle's attempt.
    pub(super) async fn second_factor(
        &self,
        origin: &Origin,
        rec: &UserRecord,
        otp: Option<Secret>,
    ) -> Result<SecondFactor> {
        let Some(otp) = otp.filter(|o| !o.expose().trim().is_empty()) else {
            return Ok(SecondFactor::Missing);
        };
        let now = self.clock.now();
        let spent = match proof_of(rec, otp.expose(), now) {
            None => false,
            Some(proof) => {
                let (store, id) = (self.store.clone(), rec.id);
                blocking(move || Ok(store.mfa_spend(id, &proof)?))
                    .await?
                    .is_ok()
            }
        };
        if spent {
            return Ok(SecondFactor::Accepted);
        }
        audit::emit(
            self.trail(),
            Event::OtpFailed {
                subject: Subject {
                    username: &rec.username,
                    id: rec.id,
                },
                during: "login",
            },
            origin,
        );
        Ok(SecondFactor::Wrong)
    }
}
