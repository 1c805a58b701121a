//! The MQTT broker's questions, in the mosquitto-go-auth HTTP backend's
//! terms (`http/handlers/mqtt.rs` speaks its protocol): may this client
//! connect (username and password, an access token as the password, or an
//! API key as the password with the key's id as the username), is this
//! user a superuser, may it read, write or subscribe. The answers are the
//! role bits (a key's: within its owner's current roles): `acc` 1 read, 2
//! write (3 both), 4 subscribe; superuser is the admin flag. Topic rules
//! beyond the role bits are out of scope.

use uuid::Uuid;

use super::{AccountError, Result, api_key_caller, client_of, throttled};
use crate::audit::{self, Event, Origin, Subject};
use crate::domain::{Roles, Secret, fold};
use crate::store::UserView;

use super::Sessions;

/// What the broker may ask of a topic (mosquitto's access codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttAccess {
    Read,
    Write,
    ReadWrite,
    Subscribe,
}

impl MqttAccess {
    /// `acc` as mosquitto sends it; `None` for any other value.
    pub fn from_acc(acc: i64) -> Option<MqttAccess> {
        match acc {
            1 => Some(MqttAccess::Read),
            2 => Some(MqttAccess::Write),
            3 => Some(MqttAccess::ReadWrite),
            4 => Some(MqttAccess::Subscribe),
            _ => None,
        }
    }

    fn allowed(self, roles: Roles) -> bool {
        match self {
            MqttAccess::Read => roles.read,
            MqttAccess::Write => roles.write,
            MqttAccess::ReadWrite => roles.read && roles.write,
            MqttAccess::Subscribe => roles.subscribe,
        }
    }
}

/// Does `password` look like a JWT (three base64url parts, a JSON header)?
/// Passwords that do are checked as access tokens, never hashed.
fn looks_like_jwt(password: &str) -> bool {
    password.starts_with("eyJ") && password.split('.').count() == 3
}

fn subject(user: &UserView) -> Subject<'_> {
    Subject {
        username: &user.username,
        id: user.id,
    }
}

impl Sessions<'_> {
    /// May `username` connect with `password`? A password is checked as a
    /// login checks it (the same throttle, hash queue and timing); an
    /// access token as the password must be valid, unrevoked and the named
    /// user's. A user with two-factor authentication on connects with a
    /// token only: its password alone is not enough anywhere.
    pub async fn mqtt_user(&self, origin: &Origin, username: &str, password: Secret) -> Result<()> {
        let a = &self.accounts;
        if crate::apikey::looks_like_key(password.expose()) {
            // The key's id is the MQTT username, so that the broker's later
            // questions (which name only the username) get the key's roles.
            let key = api_key_caller(a.store, a.clock, || origin.clone(), password.expose())
                .map_err(|e| {
                    let reason = e.to_string();
                    audit::emit(
                        self.accounts.trail(),
                        Event::MqttLoginFailed {
                            username,
                            reason: &reason,
                        },
                        origin,
                    );
                    AccountError::Forbidden("Invalid API key")
                })?;
            if key.api_key.map(|id| id.to_string()) != Some(username.to_ascii_lowercase()) {
                audit::emit(
                    self.accounts.trail(),
                    Event::MqttLoginFailed {
                        username,
                        reason: "the username is not the API key's id",
                    },
                    origin,
                );
                return Err(AccountError::Forbidden(
                    "With an API key as the password, the username is the key's id",
                ));
            }
            audit::emit(
                self.accounts.trail(),
                Event::MqttLoginOk {
                    subject: subject(&key),
                    via: "api key",
                },
                origin,
            );
            return Ok(());
        }
        if looks_like_jwt(password.expose()) {
            let now = a.clock.now();
            let refused = |reason: &str| {
                audit::emit(
                    self.accounts.trail(),
                    Event::MqttLoginFailed { username, reason },
                    origin,
                );
                AccountError::Forbidden("Invalid token, or not the named user's")
            };
            let access = match self.tokens.verify_access(password.expose(), now) {
                Ok(access) => access,
                Err(e) => {
                    if let Err(wait) = self.throttle.bad_token(client_of(origin)) {
                        return Err(throttled(self.accounts.trail(), origin, None, wait));
                    }
                    return Err(refused(&e.to_string()));
                }
            };
            let user = match a.store.user_view(access.user_id)? {
                Some(u) if u.generation == access.generation => u,
                Some(_) => return Err(refused("revoked")),
                None => return Err(refused("user gone")),
            };
            if fold(&user.username) != fold(username) {
                return Err(refused("another user's token"));
            }
            audit::emit(
                self.accounts.trail(),
                Event::MqttLoginOk {
                    subject: subject(&user),
                    via: "token",
                },
                origin,
            );
            return Ok(());
        }
        let checked = self.check_password(origin, username, password).await?;
        if checked.user.mfa.is_on() {
            checked.attempt.neutral();
            return Err(AccountError::Forbidden(
                "This user has two-factor authentication on: connect with an access token as the password",
            ));
        }
        checked.attempt.succeed();
        let view = UserView::from(&checked.user);
        audit::emit(
            self.accounts.trail(),
            Event::MqttLoginOk {
                subject: subject(&view),
                via: "password",
            },
            origin,
        );
        Ok(())
    }

    /// The roles an MQTT username holds now: an API key's id names the key
    /// (its roles within its owner's current ones; none once expired,
    /// revoked or orphaned), anything else a user.
    fn mqtt_roles(&self, username: &str) -> Result<Option<Roles>> {
        let store = self.accounts.store;
        if let Ok(id) = Uuid::parse_str(username)
            && let Some(key) = store.api_key_by_id(id)?
        {
            let now = self.accounts.clock.now();
            if key.expires_at.is_some_and(|t| now >= t) {
                return Ok(None);
            }
            return Ok(store
                .user_view(key.owner)?
                .map(|owner| Roles::from_bits(owner.roles.bits() & key.roles.bits())));
        }
        Ok(store.user_by_name(username)?.map(|u| u.roles))
    }

    /// Is `username` a superuser (an admin)?
    pub fn mqtt_superuser(&self, username: &str) -> Result<()> {
        match self.mqtt_roles(username)? {
            Some(roles) if roles.admin => Ok(()),
            _ => Err(AccountError::Forbidden("Not a superuser")),
        }
    }

    /// May `username` do `access` (on any topic: only the role bits count)?
    pub fn mqtt_acl(&self, username: &str, access: MqttAccess) -> Result<()> {
        match self.mqtt_roles(username)? {
            Some(roles) if access.allowed(roles) => Ok(()),
            Some(_) => Err(AccountError::Forbidden("The roles do not allow it")),
            None => Err(AccountError::Forbidden("No such user")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_codes_map_to_the_role_bits() {
        let roles = |bits| Roles::from_bits(bits);
        assert!(MqttAccess::from_acc(1).unwrap().allowed(roles(Roles::READ)));
        assert!(
            !MqttAccess::from_acc(1)
                .unwrap()
                .allowed(roles(Roles::WRITE))
        );
        assert!(
            MqttAccess::from_acc(2)
                .unwrap()
                .allowed(roles(Roles::WRITE))
        );
        assert!(
            !MqttAccess::from_acc(3)
                .unwrap()
                .allowed(roles(Roles::WRITE))
        );
        assert!(
            MqttAccess::from_acc(3)
                .unwrap()
                .allowed(roles(Roles::READ | Roles::WRITE))
        );
        assert!(
            MqttAccess::from_acc(4)
                .unwrap()
                .allowed(roles(Roles::SUBSCRIBE))
        );
        assert!(
            !MqttAccess::from_acc(4)
                .unwrap()
                .allowed(roles(Roles::ALL.bits() & !Roles::SUBSCRIBE))
        );
        for acc in [0, 5, 8, -1, 255] {
            assert_eq!(MqttAccess::from_acc(acc), None);
        }
    }

    #[test]
    fn only_jwt_shaped_passwords_are_taken_for_tokens() {
        assert!(looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert!(!looks_like_jwt("correct horse battery staple"));
        assert!(!looks_like_jwt("eyJ.only-two"));
    }
}
