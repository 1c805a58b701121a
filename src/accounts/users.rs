//! User management: create, change roles or password, delete, log out
//! everywhere, recover the admin, rotate the signing key (or revoke every
//! earlier one). Each checks who may do it, makes one durable store write
//! and writes its audit lines.

use uuid::Uuid;

use super::{AccountError, Accounts, Actor, Result, blocking, start_check};
use crate::audit::{self, Event, Origin, Subject};
use crate::domain::{Password, Roles, Secret, Username};
use crate::lifecycle::{PreviousKeys, Replaced};
use crate::store::{UserRecord, UserView, new_user_record};

fn subject(rec: &UserRecord) -> Subject<'_> {
    Subject {
        username: &rec.username,
        id: rec.id,
    }
}

/// How a password change is authorised.
pub enum PasswordProof {
    /// The user's current password (required when users change their own).
    Current(Secret),
    /// None given: only admins and operators may change a password so.
    None,
}

/// Why users prove their own password: what a wrong one is called and
/// audited as. Either way it is one check, throttled like a login and
/// counted toward the caller's token generation.
#[derive(Clone, Copy)]
pub(super) enum OwnPassword {
    /// `currentPassword` of a password change.
    Change,
    /// `password` of a request for a new TOTP secret.
    MfaGenerate,
}

impl OwnPassword {
    fn wrong(self) -> &'static str {
        match self {
            OwnPassword::Change => "currentPassword is incorrect",
            OwnPassword::MfaGenerate => "password is incorrect",
        }
    }

    fn too_often(self) -> &'static str {
        match self {
            OwnPassword::Change => {
                "currentPassword is incorrect, too often: every session of this user is ended"
            }
            OwnPassword::MfaGenerate => {
                "password is incorrect, too often: every session of this user is ended"
            }
        }
    }

    fn failed(self, who: Subject<'_>) -> Event<'_> {
        match self {
            OwnPassword::Change => Event::PasswordChangeFailed(who),
            OwnPassword::MfaGenerate => Event::MfaGenerateFailed(who),
        }
    }
}

impl Accounts<'_> {
    /// A user by name (case-insensitively), for callers that address users
    /// by name (the CLI, `GET /user/{username}`).
    pub fn user_named(&self, name: &str) -> Result<UserRecord> {
        self.store
            .user_by_name(name)?
            .ok_or(AccountError::NotFound("User not found"))
    }

    /// Every username as given, in the store's order.
    pub fn usernames(&self, actor: Actor<'_>) -> Result<Vec<String>> {
        actor.require_admin()?;
        Ok(self.store.usernames()?)
    }

    /// Creates a user (admins and operators).
    pub async fn create_user(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        username: &str,
        password: Secret,
        roles: Roles,
    ) -> Result<UserRecord> {
        actor.require_admin()?;
        let username = Username::parse(username)?;
        let password = Password::parse(password.into_inner())?;
        // Fail fast on a taken name before paying for a hash; the
        // transaction below still decides races.
        if self.store.user_by_name(username.as_str())?.is_some() {
            return Err(AccountError::Conflict("Username is already taken"));
        }
        let hash = self.hasher.hash(password).await?;
        let rec = new_user_record(&username, hash, roles, self.clock.now());
        let store = self.store.clone();
        let rec = blocking(move || Ok(store.create_user(&rec).map(|_| rec)?)).await?;
        audit::emit(
            self.trail(),
            Event::UserCreated {
                subject: subject(&rec),
                roles: rec.roles,
            },
            &actor.origin(origin),
        );
        Ok(rec)
    }

    /// The roles of user `id` (admins, or the user itself).
    pub fn roles_of(&self, actor: Actor<'_>, id: Uuid) -> Result<Roles> {
        actor.require_admin_or_self(id, "Only an admin or the user itself may read these roles")?;
        let user = self
            .store
            .user_view(id)?
            .ok_or(AccountError::NotFound("User not found"))?;
        Ok(user.roles)
    }

    /// Replaces the roles of user `id` (admins); revokes its tokens. The
    /// store refuses to leave no admin.
    pub async fn set_roles(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        id: Uuid,
        roles: Roles,
    ) -> Result<UserRecord> {
        actor.require_admin()?;
        let (store, now) = (self.store.clone(), self.clock.now());
        let rec = blocking(move || Ok(store.set_roles(id, roles, now)?)).await?;
        audit::emit(
            self.trail(),
            Event::UserRolesChanged {
                subject: subject(&rec),
                roles: rec.roles,
            },
            &actor.origin(origin),
        );
        Ok(rec)
    }

    /// Sets the password of user `id`; revokes its tokens. Admins and
    /// operators may set any password without proof (the original's
    /// contract: an admin can create another admin anyway); users changing
    /// their own prove they know the current one, so a stolen access token
    /// alone cannot take the account over. That proof is throttled like a
    /// login (the same count per username and address: 429 before any
    /// hash), and a few wrong ones with the same token generation revoke
    /// every token of the user.
    pub async fn set_password(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        id: Uuid,
        password: Secret,
        proof: PasswordProof,
    ) -> Result<UserRecord> {
        actor.refuse_api_key("An API key cannot change passwords")?;
        actor.require_admin_or_self(
            id,
            "Only an admin or the user itself may change this password",
        )?;
        let password = Password::parse(password.into_inner())?;
        if let Actor::User(me) = actor
            && !actor.is_admin()
        {
            let PasswordProof::Current(current) = proof else {
                return Err(AccountError::Invalid(
                    "currentPassword is required to change your own password".into(),
                ));
            };
            self.check_current_password(actor, me, origin, current, OwnPassword::Change)
                .await?;
        }
        let hash = self.hasher.hash(password).await?;
        let (store, now) = (self.store.clone(), self.clock.now());
        let rec = blocking(move || Ok(store.set_password_hash(id, hash, now)?)).await?;
        audit::emit(
            self.trail(),
            Event::UserPasswordChanged(subject(&rec)),
            &actor.origin(origin),
        );
        Ok(rec)
    }

    /// The proof a user gives of its own password (to change it, or to get
    /// a TOTP secret): 429 when this client is throttled for the account,
    /// 503 when the hash queue is full, 403 when wrong; the wrong guess
    /// that reaches the per-user threshold for the caller's token
    /// generation also logs the user out everywhere.
    pub(super) async fn check_current_password(
        &self,
        actor: Actor<'_>,
        me: &UserView,
        origin: &Origin,
        current: Secret,
        purpose: OwnPassword,
    ) -> Result<()> {
        let throttle = self.throttle.ok_or_else(|| {
            AccountError::Internal(anyhow::anyhow!(
                "a password proof is checked only by the daemon, with its throttle"
            ))
        })?;
        let (attempt, slot) =
            start_check(self.trail(), throttle, self.hasher, origin, &me.username)?;
        let stored = self.store.user_by_id(me.id)?.ok_or_else(|| {
            AccountError::Unauthorized("The token's user no longer exists".into())
        })?;
        let ok = self
            .hasher
            .verify(slot, current.into_inner(), Some(stored.password_hash))
            .await?;
        if ok {
            attempt.succeed();
            return Ok(());
        }
        attempt.fail();
        let who = Subject {
            username: &me.username,
            id: me.id,
        };
        audit::emit(self.trail(), purpose.failed(who), origin);
        if throttle.wrong_current_password(me.id, me.generation) {
            self.log_out_everywhere(actor, origin, me.id).await?;
            audit::emit(self.trail(), Event::PasswordGuessing(who), origin);
            return Err(AccountError::Forbidden(purpose.too_often()));
        }
        Err(AccountError::Forbidden(purpose.wrong()))
    }

    /// Deletes user `id` (admins); the store refuses to delete the last admin.
    pub async fn delete_user(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        id: Uuid,
    ) -> Result<UserRecord> {
        actor.require_admin()?;
        let store = self.store.clone();
        let rec = blocking(move || Ok(store.delete_user(id)?)).await?;
        audit::emit(
            self.trail(),
            Event::UserDeleted(subject(&rec)),
            &actor.origin(origin),
        );
        Ok(rec)
    }

    /// Revokes every token and session of user `id` (admins, or the user
    /// itself).
    pub async fn log_out_everywhere(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        id: Uuid,
    ) -> Result<UserRecord> {
        if actor.is(id) {
            actor.refuse_api_key("An API key cannot log its user out everywhere")?;
        }
        actor.require_admin_or_self(
            id,
            "Only an admin or the user itself may end these sessions",
        )?;
        let (store, now) = (self.store.clone(), self.clock.now());
        let rec = blocking(move || Ok(store.revoke_all_tokens(id, now)?)).await?;
        // The user's own "log out everywhere" names no `by`.
        let origin = if actor.is(id) {
            origin.clone()
        } else {
            actor.origin(origin)
        };
        audit::emit(self.trail(), Event::LogoutAll(subject(&rec)), &origin);
        Ok(rec)
    }

    /// Gives `username` a new password and every role, creating it if it is
    /// gone (operators only: the way back in when no admin can log in).
    pub async fn recover_admin(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        username: &str,
        password: Secret,
    ) -> Result<UserRecord> {
        if !matches!(actor, Actor::Operator) {
            return Err(AccountError::Forbidden(
                "Only an operator on the gateway may recover the admin",
            ));
        }
        let username = Username::parse(username)?;
        let password = Password::parse(password.into_inner())?;
        let hash = self.hasher.hash(password).await?;
        let (store, now) = (self.store.clone(), self.clock.now());
        // One transaction: every role, the new hash, tokens revoked (or a
        // new user when the name is gone).
        let rec = blocking(move || Ok(store.recover_admin(&username, hash, now)?.user)).await?;
        audit::emit(self.trail(), Event::AdminRecovered(subject(&rec)), origin);
        Ok(rec)
    }

    /// Retires the active signing key and makes a new one active. Nobody is
    /// logged out: tokens signed with the old key stay valid until they
    /// expire. Returns the new key id. (SIGHUP, `keys rotate`.)
    pub async fn rotate_signing_key(&self, actor: Actor<'_>, origin: &Origin) -> Result<String> {
        Ok(self
            .replace_signing_key(actor, origin, PreviousKeys::Retire)
            .await?
            .kid)
    }

    /// Makes a new signing key active (admins, operators and the daemon
    /// itself), retiring the earlier keys or, for a suspected leak,
    /// revoking them: then every token signed before, access or refresh,
    /// is refused from the next request on and every session ends with
    /// it (its refresh tokens no longer verify; its record goes when it is
    /// pruned). One audit line for the new key, one per revoked key.
    pub async fn replace_signing_key(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        previous: PreviousKeys,
    ) -> Result<Replaced> {
        actor.require_admin()?;
        let (store, tokens, now) = (self.store.clone(), self.tokens.cloned(), self.clock.now());
        let replaced = blocking(move || {
            Ok(crate::lifecycle::replace_signing_key(
                &store,
                tokens.as_ref(),
                now,
                previous,
            )?)
        })
        .await?;
        let origin = actor.origin(origin);
        audit::emit(
            self.trail(),
            Event::KeyRotated { kid: &replaced.kid },
            &origin,
        );
        for kid in &replaced.revoked {
            audit::emit(self.trail(), Event::KeyRevoked { kid }, &origin);
        }
        Ok(replaced)
    }
}
