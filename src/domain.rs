//! Domain values parsed once at the boundary: usernames, passwords and role
//! profiles. Once a value of these types exists it is valid everywhere, so
//! handlers and the store never re-validate.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest accepted username, in characters.
pub const USERNAME_MAX_CHARS: usize = 256;
/// Shortest accepted password, in characters (the API schema's `minLength: 8`).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest accepted password, in bytes of UTF-8 (bounds the work of one hash).
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Why a username or password was refused. The message is the one clients
/// and the CLI show, as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("Username must not be empty")]
    UsernameEmpty,
    #[error("Username must be at most {USERNAME_MAX_CHARS} characters")]
    UsernameTooLong,
    #[error("Username must not contain control characters")]
    UsernameControl,
    #[error("Username must not start or end with whitespace")]
    UsernameWhitespace,
    #[error("Password must be at least {PASSWORD_MIN_CHARS} characters")]
    PasswordTooShort,
    #[error("Password must be at most {PASSWORD_MAX_BYTES} bytes")]
    PasswordTooLong,
}

/// A validated username: 1 to 256 characters, no control characters, no
/// leading or trailing whitespace. Stored and listed exactly as given;
/// uniqueness is decided on [`Username::folded`].
#[derive(Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Username, InvalidInput> {
        let chars = s.chars().count();
        if chars == 0 {
            return Err(InvalidInput::UsernameEmpty);
        }
        if chars > USERNAME_MAX_CHARS {
            return Err(InvalidInput::UsernameTooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::UsernameControl);
        }
        if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
            return Err(InvalidInput::UsernameWhitespace);
        }
        Ok(Username(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key that makes usernames unique. Upper-casing
    /// first maps e.g. `ß` to `SS`, so `straße` and `STRASSE` collide, which
    /// plain lower-casing would miss.
    pub fn folded(&self) -> String {
        fold(&self.0)
    }
}

/// Case-folds any string the way [`Username::folded`] does; used for lookups
/// by a name that may not be a valid username at all.
pub fn fold(s: &str) -> String {
    // Lower first too: `ẞ` (capital sharp s) lower-cases to `ß`, which then
    // upper-cases to `SS`; without the first step `STRAẞE` and `strasse`
    // would be different users (found by the `credentials` fuzz target).
    s.to_lowercase().to_uppercase().to_lowercase()
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Username {
    /// Debug-quoted so that a username can never forge a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A password that meets the length rules. Its `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Passwords are compared exactly: no trimming, no case folding, no
    /// Unicode normalisation.
    pub fn parse(s: String) -> Result<Password, InvalidInput> {
        if s.chars().count() < PASSWORD_MIN_CHARS {
            return Err(InvalidInput::PasswordTooShort);
        }
        if s.len() > PASSWORD_MAX_BYTES {
            return Err(InvalidInput::PasswordTooLong);
        }
        Ok(Password(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A password (or other secret) as received, not yet judged by the rules:
/// a login's password, a `currentPassword`, an admin request's new
/// password. Like [`Password`], its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// Deserializes `T` only from a JSON object. serde's derived `Deserialize`
/// also accepts a struct written as an array of its fields in order
/// (`["admin", "pw"]`); the API's bodies are objects, so arrays are refused.
pub struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// The six role flags of the API. All six are required in every request
/// body that carries a role profile, and unknown flags are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
// For the OpenAPI schema (additionalProperties: false); parsing is below.
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub admin: bool,
    pub flows: bool,
    pub configure: bool,
    pub subscribe: bool,
    pub write: bool,
    pub read: bool,
}

/// The derived form of [`Roles`], wrapped in [`ObjectOnly`] below.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFields {
    admin: bool,
    flows: bool,
    configure: bool,
    subscribe: bool,
    write: bool,
    read: bool,
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ObjectOnly(f) = ObjectOnly::<RolesFields>::deserialize(d)?;
        Ok(Roles {
            admin: f.admin,
            flows: f.flows,
            configure: f.configure,
            subscribe: f.subscribe,
            write: f.write,
            read: f.read,
        })
    }
}

/// Roles in storage and in tokens: the bitmask ([`Roles::bits`]), for
/// `#[serde(with = "crate::domain::role_bits")]`.
pub mod role_bits {
    use super::Roles;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(roles: &Roles, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(roles.bits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Roles, D::Error> {
        u8::deserialize(d).map(Roles::from_bits)
    }
}

impl Roles {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const SUBSCRIBE: u8 = 4;
    pub const CONFIGURE: u8 = 8;
    pub const FLOWS: u8 = 16;
    pub const ADMIN: u8 = 128;

    pub const ALL: Roles = Roles {
        admin: true,
        flows: true,
        configure: true,
        subscribe: true,
        write: true,
        read: true,
    };

    /// The token's bitmask: read=1, write=2, subscribe=4, configure=8,
    /// flows=16, admin=128 (so all six flags are 159, as the original issues).
    pub fn bits(self) -> u8 {
        let mut b = 0;
        for (on, bit) in [
            (self.read, Self::READ),
            (self.write, Self::WRITE),
            (self.subscribe, Self::SUBSCRIBE),
            (self.configure, Self::CONFIGURE),
            (self.flows, Self::FLOWS),
            (self.admin, Self::ADMIN),
        ] {
            if on {
                b |= bit;
            }
        }
        b
    }

    /// Decodes a bitmask; bits 5 and 6 (set by older releases' 255) are
    /// ignored.
    pub fn from_bits(b: u8) -> Roles {
        Roles {
            read: b & Self::READ != 0,
            write: b & Self::WRITE != 0,
            subscribe: b & Self::SUBSCRIBE != 0,
            configure: b & Self::CONFIGURE != 0,
            flows: b & Self::FLOWS != 0,
            admin: b & Self::ADMIN != 0,
        }
    }

    /// Parses the CLI form: a comma-separated list of flag names, `all` or
    /// `none`.
    pub fn parse_list(s: &str) -> Result<Roles, String> {
        let mut bits = 0u8;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            bits |= match name {
                "all" => Roles::ALL.bits(),
                "none" => 0,
                "admin" => Self::ADMIN,
                "flows" => Self::FLOWS,
                "configure" => Self::CONFIGURE,
                "subscribe" => Self::SUBSCRIBE,
                "write" => Self::WRITE,
                "read" => Self::READ,
                other => {
                    return Err(format!(
                        "unknown role {other:?} (expected admin, flows, configure, subscribe, write, read, all or none)"
                    ));
                }
            };
        }
        Ok(Roles::from_bits(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_roles_make_159_and_255_decodes_to_all() {
        assert_eq!(Roles::ALL.bits(), 159);
        assert_eq!(Roles::from_bits(255), Roles::ALL);
        assert_eq!(Roles::from_bits(159), Roles::ALL);
        assert_eq!(Roles::from_bits(0).bits(), 0);
        for b in 0..=255u8 {
            assert_eq!(Roles::from_bits(b).bits(), b & 159);
        }
    }

    #[test]
    fn usernames() {
        assert!(Username::parse("bobz@home.com").is_ok());
        assert!(Username::parse("Zoë Ünïcødé 名前").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(" lead").is_err());
        assert!(Username::parse("trail\u{a0}").is_err());
        assert!(Username::parse("nul\0").is_err());
        assert!(Username::parse("tab\tx").is_err());
        assert!(Username::parse(&"é".repeat(256)).is_ok());
        assert!(Username::parse(&"é".repeat(257)).is_err());
        assert_eq!(
            Username::parse("Straße").unwrap().folded(),
            Username::parse("STRASSE").unwrap().folded()
        );
        assert_eq!(fold("STRAẞE"), fold("strasse"));
        for s in ["ẞ", "ß", "ΐ", "İ", "ﬃ", "Ǆ"] {
            assert_eq!(fold(&fold(s)), fold(s), "fold is stable for {s}");
        }
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("éééé".into()).is_err());
        assert!(Password::parse("a".repeat(1024)).is_ok());
        assert!(Password::parse("a".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pw".into()).unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn roles_and_bodies_must_be_objects() {
        let ok = r#"{"admin":true,"flows":false,"configure":false,"subscribe":false,"write":false,"read":true}"#;
        assert_eq!(serde_json::from_str::<Roles>(ok).unwrap().bits(), 129);
        assert!(serde_json::from_str::<Roles>("[true,true,true,true,true,true]").is_err());
        assert!(serde_json::from_str::<Roles>(&ok.replace("}", r#","root":true}"#)).is_err());
        assert!(serde_json::from_str::<Roles>(r#"{"admin":true}"#).is_err());
        #[derive(Deserialize)]
        struct Pair {
            _a: String,
        }
        assert!(serde_json::from_str::<ObjectOnly<Pair>>(r#"["x"]"#).is_err());
        assert!(serde_json::from_str::<ObjectOnly<Pair>>(r#"{"_a":"x"}"#).is_ok());
    }

    #[test]
    fn role_lists() {
        assert_eq!(Roles::parse_list("all").unwrap(), Roles::ALL);
        assert_eq!(Roles::parse_list("read,write").unwrap().bits(), 3);
        assert!(Roles::parse_list("root").is_err());
    }
}
