//! What crosses the admin socket: one JSON [`Request`] line, one JSON
//! [`Response`] line. Roles travel as the API's six flags, passwords as
//! [`Secret`]s (masked in Debug); the daemon renders nothing, the CLI
//! prints [`Output`] with its `Display`.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use crate::domain::{Roles, Secret};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    UserAdd {
        username: String,
        password: Secret,
        roles: Roles,
    },
    UserList,
    UserPasswd {
        username: String,
        password: Secret,
    },
    UserRoles {
        username: String,
        roles: Roles,
    },
    UserDelete {
        username: String,
    },
    /// Revoke every token of the user.
    UserLogout {
        username: String,
    },
    /// Turn the user's two-factor authentication off (it lost its
    /// authenticator and recovery codes); revokes its tokens.
    UserMfaReset {
        username: String,
    },
    RecoverAdmin {
        username: String,
        password: Secret,
    },
    /// A new API key for `owner` (roles among the owner's).
    ApikeyCreate {
        owner: String,
        name: String,
        roles: Roles,
        /// RFC 3339.
        expires_at: Option<String>,
    },
    /// Every API key, or `owner`'s.
    ApikeyList {
        owner: Option<String>,
    },
    ApikeyRevoke {
        id: Uuid,
    },
    KeysRotate,
    /// A rotation that also deletes every earlier key at once (suspected
    /// leak). An op of its own rather than a flag on `keys-rotate`: a
    /// daemon that predates it refuses it as unknown instead of quietly
    /// rotating without revoking.
    KeysRotateRevokingPrevious,
    KeysList,
    /// The store as a backup file (see `store::backup`): the response line
    /// is followed by the file's bytes.
    Backup,
}

/// The daemon's answer: what happened, or why it was refused (the message
/// the CLI prints after `engine-auth: error:`).
pub type Response = Result<Output, String>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Output {
    Created {
        id: Uuid,
    },
    /// A change done; the sentence says what it revoked.
    Done {
        message: String,
    },
    Users {
        users: Vec<UserSummary>,
    },
    Keys {
        now: u64,
        keys: Vec<KeySummary>,
    },
    /// A backup file of `bytes` bytes. Over the socket its bytes follow the
    /// response line raw (`data` is not in the JSON).
    /// A new API key: the only answer that holds one.
    ApikeyCreated {
        id: Uuid,
        key: Secret,
    },
    ApiKeys {
        keys: Vec<ApiKeySummary>,
    },
    Backup {
        bytes: u64,
        #[serde(skip)]
        data: BackupData,
    },
}

/// A backup file's bytes: every password hash and signing key, so its
/// `Debug` shows only the length.
#[derive(Clone, Default, PartialEq)]
pub struct BackupData(pub Vec<u8>);

impl fmt::Debug for BackupData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupData({} bytes)", self.0.len())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserSummary {
    pub id: Uuid,
    pub username: String,
    pub roles: Roles,
}

/// A signing key as the CLI shows it: never key material.
/// An API key as listed (never the key); times are Unix seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKeySummary {
    pub id: Uuid,
    pub name: String,
    pub owner: String,
    pub roles: Roles,
    pub created_at: u64,
    pub last_used_at: Option<u64>,
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeySummary {
    pub kid: String,
    pub state: String,
    /// `HS256`, `EdDSA` or `ES256` (absent from an older daemon's answer).
    #[serde(default)]
    pub alg: String,
    pub created_at: u64,
    pub retired_at: Option<u64>,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Created { id } => write!(f, "{id}"),
            Output::Done { message } => f.write_str(message),
            Output::Users { users } => {
                for (i, u) in users.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{}\t{}\t{}", u.id, u.roles.bits(), u.username)?;
                }
                Ok(())
            }
            Output::Keys { now, keys } => {
                f.write_str("kid\tstate\talg\tage_secs\tretired_secs_ago")?;
                for k in keys {
                    write!(
                        f,
                        "\n{}\t{}\t{}\t{}\t{}",
                        k.kid,
                        k.state,
                        if k.alg.is_empty() { "-" } else { &k.alg },
                        now.saturating_sub(k.created_at),
                        k.retired_at
                            .map_or("-".into(), |t| now.saturating_sub(t).to_string())
                    )?;
                }
                Ok(())
            }
            Output::ApikeyCreated { id, key } => write!(
                f,
                "id\t{id}\nkey\t{}\n(the key is shown this once: store it now)",
                key.expose()
            ),
            Output::ApiKeys { keys } => {
                let time = |t: Option<u64>| {
                    t.map_or("-".to_string(), |t| {
                        crate::clock::utc_rfc3339(t.saturating_mul(1000))
                    })
                };
                f.write_str("id\towner\troles\tcreated\tlast_used\texpires\tname")?;
                for k in keys {
                    write!(
                        f,
                        "\n{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        k.id,
                        k.owner,
                        k.roles.names().join(","),
                        time(Some(k.created_at)),
                        time(k.last_used_at),
                        time(k.expires_at),
                        k.name
                    )?;
                }
                Ok(())
            }
            Output::Backup { bytes, .. } => write!(f, "a backup of {bytes} bytes"),
        }
    }
}
