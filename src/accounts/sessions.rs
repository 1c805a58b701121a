//! Login sessions: logging in (throttled, timing-flat for unknown users),
//! refreshing (rotation with reuse detection), logging out one session.
//! These exist only over HTTP, so they also take the client's throttle.

use uuid::Uuid;

use super::mfa::SecondFactor;
use super::{AccountError, Accounts, Actor, Result, blocking, client_of, start_check, throttled};
use crate::audit::{self, Event, Origin, Subject};
use crate::config::Settings;
use crate::domain::{PASSWORD_MAX_BYTES, Password, Secret};
use crate::store::{
    Exchange, NewSession, Refusal, SessionClient, SessionToken, UserRecord, UserView,
};
use crate::throttle::{Attempt, Throttle};
use crate::tokens::{Issue, Refresh, RefreshId, TokenPair, Tokens};

/// What a login presents, as sent (a password that breaks the length rules
/// simply fails to verify, as in the original).
pub struct LoginRequest {
    pub username: String,
    pub password: Secret,
    /// A one-time password (TOTP code or recovery code), for users with
    /// two-factor authentication on.
    pub otp: Option<Secret>,
    /// The client's `User-Agent`, kept with the session for its owner's
    /// sessions list.
    pub user_agent: Option<String>,
}

/// A right password: its user, and the throttle's attempt, pending.
pub(super) struct Checked<'t> {
    pub user: UserRecord,
    pub attempt: Attempt<'t>,
    /// The password, when it meets today's rules (for a hash upgrade).
    pub password: Option<Password>,
}

/// What sessions need beyond user management.
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    pub accounts: Accounts<'a>,
    pub tokens: &'a Tokens,
    pub settings: &'a Settings,
    pub throttle: &'a Throttle,
}

fn subject(user: &UserView) -> Subject<'_> {
    Subject {
        username: &user.username,
        id: user.id,
    }
}

/// The client's address, for requests over HTTP.
fn peer_of(origin: &Origin) -> Option<std::net::IpAddr> {
    match origin {
        Origin::Http { peer, .. } => *peer,
        _ => None,
    }
}

/// What the client is told when the store refuses a refresh token.
fn refusal_message(why: Refusal) -> &'static str {
    match why {
        Refusal::Unknown => "Unknown or revoked refresh token",
        Refusal::Revoked => "This session has been revoked",
        Refusal::SessionEnded => "Session expired: log in again",
        Refusal::TooManyRetries => "Too many retries of one refresh token: log in again",
    }
}

impl Sessions<'_> {
    /// Checks a username and password, and for a user with two-factor
    /// authentication on a one-time password; on success opens a session.
    /// The attempt counts toward the client's throttle from before the hash
    /// (429 before any hash when throttled, 503 when the hash queue is
    /// full). Only a right password learns whether a second factor is
    /// needed ("OTP required", which counts neither way) or wrong ("Invalid
    /// OTP", a failure like a wrong password).
    pub async fn login(&self, origin: &Origin, req: LoginRequest) -> Result<TokenPair> {
        let LoginRequest {
            username,
            password,
            otp,
            user_agent,
        } = req;
        let a = &self.accounts;
        let Checked {
            user,
            attempt,
            password,
        } = self.check_password(origin, &username, password).await?;
        if user.mfa.is_on() {
            match a.second_factor(origin, &user, otp).await? {
                SecondFactor::Accepted => {}
                SecondFactor::Missing => {
                    attempt.neutral();
                    return Err(AccountError::Unauthorized("OTP required".into()));
                }
                SecondFactor::Wrong => {
                    attempt.fail();
                    return Err(AccountError::Unauthorized("Invalid OTP".into()));
                }
            }
        }
        attempt.succeed();
        if a.hasher.needs_rehash(&user.password_hash) {
            self.upgrade_hash(&user, password).await;
        }
        let client = SessionClient::new(peer_of(origin), user_agent.as_deref(), user.generation);
        let (pair, evicted) = self.start_session(&user, client).await?;
        let subject = Subject {
            username: &user.username,
            id: user.id,
        };
        audit::emit(self.accounts.trail(), Event::LoginOk(subject), origin);
        if !evicted.is_empty() {
            audit::emit(
                self.accounts.trail(),
                Event::SessionsEvicted {
                    subject,
                    sessions: &evicted,
                },
                origin,
            );
        }
        Ok(pair)
    }

    /// The password check of a login (and of the MQTT broker's user check):
    /// throttled from before the hash (429 before any hash when throttled,
    /// 503 when the hash queue is full), timing-flat for unknown users. A
    /// wrong username or password is counted, audited and answered
    /// "Invalid username or password"; a right one returns the user with
    /// its attempt still pending, for the caller to settle.
    pub(super) async fn check_password(
        &self,
        origin: &Origin,
        username: &str,
        password: Secret,
    ) -> Result<Checked<'_>> {
        let password = password.into_inner();
        if password.len() > PASSWORD_MAX_BYTES {
            return Err(AccountError::Invalid(format!(
                "Password must be at most {PASSWORD_MAX_BYTES} bytes"
            )));
        }
        let a = &self.accounts;
        // Settled as soon as the hash answers; dropped on an error path or
        // with a cancelled request, it counts as a failure.
        let (attempt, slot) = start_check(a.trail(), self.throttle, a.hasher, origin, username)?;
        let user = a.store.user_by_name(username)?;
        let password_copy = Password::parse(password.clone()).ok();
        // Unknown users are checked against the dummy hash, and every
        // failure lasts at least the slowest verification any stored hash
        // needs: the answer takes as long as for a wrong password, whatever
        // the user's hash parameters.
        let started = std::time::Instant::now();
        let ok = a
            .hasher
            .verify(
                slot,
                password,
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await?;
        match user {
            Some(user) if ok => Ok(Checked {
                user,
                attempt,
                password: password_copy,
            }),
            _ => {
                let floor = a.failure_floor().await;
                if let Some(rest) = floor.checked_sub(started.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                attempt.fail();
                audit::emit(
                    self.accounts.trail(),
                    Event::LoginFailed { username },
                    origin,
                );
                Err(AccountError::Unauthorized(
                    "Invalid username or password".into(),
                ))
            }
        }
    }

    /// Rehashes a just-verified password with the configured parameters
    /// (after `tune-argon2` or a config change). Failure only costs the
    /// upgrade.
    async fn upgrade_hash(&self, user: &UserRecord, password: Option<Password>) {
        let Some(password) = password else { return };
        let new = match self.accounts.hasher.hash(password).await {
            Ok(h) => h,
            Err(e) => return log::warn!("password hash upgrade failed: {e:#}"),
        };
        let (store, id, old) = (
            self.accounts.store.clone(),
            user.id,
            user.password_hash.clone(),
        );
        match blocking(move || Ok(store.upgrade_password_hash(id, &old, new)?)).await {
            Ok(true) => log::info!(
                "upgraded the password hash of {:?} to the configured parameters",
                user.username
            ),
            Ok(false) => {}
            Err(e) => log::warn!("password hash upgrade failed: {e:#}"),
        }
    }

    /// A login opens a session (every refresh token descended from it)
    /// with an absolute end, ending the user's oldest sessions beyond the
    /// cap (returned).
    async fn start_session(
        &self,
        user: &UserRecord,
        client: SessionClient,
    ) -> Result<(TokenPair, Vec<Uuid>)> {
        let s = self.settings;
        let now = self.accounts.clock.now();
        let id = Uuid::new_v4();
        let token_exp = now + s.refresh_ttl_secs.min(s.session_max_secs);
        let refresh_id = RefreshId::new(id)?;
        let pair = self.tokens.issue(&Issue {
            user_id: user.id,
            roles: user.roles,
            generation: user.generation,
            now,
            refresh_id: &refresh_id,
            refresh_exp: token_exp,
        })?;
        let session = NewSession {
            id,
            user_id: user.id,
            token_hash: refresh_id.hash,
            now,
            ends_at: now + s.session_max_secs,
            token_exp,
            keep_at_most: s.max_sessions_per_user,
        };
        let store = self.accounts.store.clone();
        let evicted = blocking(move || Ok(store.start_session_of(&session, client)?)).await?;
        Ok((pair, evicted))
    }

    /// Exchanges a refresh token for a new pair: the presented one is spent
    /// and a successor issued in the same session. A spent token presented
    /// again after the grace window revokes the session (a stolen token was
    /// used, or will be); within it, it gets a sibling of the successor, and
    /// the first of them used again retires the others (one chain per
    /// session, see `store::rotation`). Tokens that fail verification count
    /// toward a limit of their own (429 past it), which never refuses a
    /// login or a token that verifies.
    pub async fn refresh(&self, origin: &Origin, refresh_token: &str) -> Result<TokenPair> {
        let now = self.accounts.clock.now();
        match self.tokens.verify_refresh(refresh_token, now) {
            Ok(presented) => self.exchange(origin, presented, now).await,
            Err(e) => {
                if let Err(wait) = self.throttle.bad_token(client_of(origin)) {
                    return Err(throttled(self.accounts.trail(), origin, None, wait));
                }
                let reason = e.to_string();
                audit::emit(
                    self.accounts.trail(),
                    Event::RefreshFailed {
                        reason: &reason,
                        subject: None,
                        user_id: None,
                    },
                    origin,
                );
                Err(AccountError::Unauthorized(reason))
            }
        }
    }

    async fn exchange(&self, origin: &Origin, presented: Refresh, now: u64) -> Result<TokenPair> {
        let (s, a) = (self.settings, &self.accounts);
        let refused = |reason: &str, user: Option<&UserView>, message: &str| {
            audit::emit(
                self.accounts.trail(),
                Event::RefreshFailed {
                    reason,
                    subject: user.map(subject),
                    user_id: Some(presented.user_id),
                },
                origin,
            );
            AccountError::Unauthorized(message.to_owned())
        };
        let user = match a.store.user_view(presented.user_id)? {
            Some(u) if u.generation == presented.generation => u,
            Some(u) => {
                return Err(refused(
                    "revoked",
                    Some(&u),
                    "Refresh token has been revoked",
                ));
            }
            None => {
                return Err(refused(
                    "user gone",
                    None,
                    "The token's user no longer exists",
                ));
            }
        };
        let old = SessionToken {
            session: presented.session,
            hash: presented.id_hash,
        };
        // The successor names the session the store finds for the token.
        let session = a.store.session_of(&old)?;
        let next = RefreshId::new(session.unwrap_or_else(Uuid::nil))?;
        let outcome = match session {
            None => Exchange::Refused(Refusal::Unknown),
            Some(_) => {
                let store = a.store.clone();
                let (new_hash, wanted, grace) =
                    (next.hash, now + s.refresh_ttl_secs, s.refresh_grace_secs);
                blocking(move || Ok(store.exchange_refresh(&old, &new_hash, wanted, now, grace)?))
                    .await?
            }
        };
        match outcome {
            Exchange::Rotated { exp, .. } => {
                let pair = self.tokens.issue(&Issue {
                    user_id: user.id,
                    roles: user.roles,
                    generation: user.generation,
                    now,
                    refresh_id: &next,
                    refresh_exp: exp,
                })?;
                audit::emit(
                    self.accounts.trail(),
                    Event::Refresh(subject(&user)),
                    origin,
                );
                Ok(pair)
            }
            Exchange::Refused(why) => {
                let why = refusal_message(why);
                Err(refused(why, Some(&user), why))
            }
            Exchange::ReuseDetected { session } => {
                audit::emit(
                    self.accounts.trail(),
                    Event::RefreshReuseDetected {
                        subject: subject(&user),
                        session,
                    },
                    origin,
                );
                Err(AccountError::Unauthorized(
                    "Refresh token was already used: the session is revoked, log in again".into(),
                ))
            }
        }
    }

    /// Ends the session `refresh_token` belongs to; it must be the caller's.
    pub async fn log_out(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        refresh_token: &str,
    ) -> Result<()> {
        let Actor::User(me) = actor else {
            return Err(AccountError::Forbidden("A session is ended by its owner"));
        };
        self.end_session(Some(me), origin, refresh_token).await
    }

    /// Ends the session of a browser's refresh cookie. With a bearer
    /// caller (`me`) the session must be the caller's; without one, the
    /// cookie is the credential: whoever holds a session's refresh token
    /// may end that session (the HTTP layer has checked the request against
    /// CSRF first).
    pub async fn log_out_cookie(
        &self,
        me: Option<&UserView>,
        origin: &Origin,
        refresh_token: &str,
    ) -> Result<()> {
        self.end_session(me, origin, refresh_token).await
    }

    async fn end_session(
        &self,
        me: Option<&UserView>,
        origin: &Origin,
        refresh_token: &str,
    ) -> Result<()> {
        let now = self.accounts.clock.now();
        let presented = self
            .tokens
            .verify_refresh_for_logout(refresh_token, now)
            .map_err(|e| AccountError::Unauthorized(e.to_string()))?;
        if me.is_some_and(|me| presented.user_id != me.id) {
            return Err(AccountError::Forbidden(
                "That refresh token belongs to another user",
            ));
        }
        let owner = match me {
            Some(_) => None,
            None => self.accounts.store.user_view(presented.user_id)?,
        };
        let token = SessionToken {
            session: presented.session,
            hash: presented.id_hash,
        };
        let store = self.accounts.store.clone();
        blocking(move || Ok(store.revoke_session_of(&token, now)?)).await?;
        if let Some(user) = me.or(owner.as_deref()) {
            audit::emit(self.accounts.trail(), Event::Logout(subject(user)), origin);
        }
        Ok(())
    }
}
