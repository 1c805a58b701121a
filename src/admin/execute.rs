//! Runs one admin request as the operator, through the same use cases the
//! HTTP API calls (so the rules, the revocations and the audit lines are the
//! API's), and says what happened.

use super::protocol::{ApiKeySummary, BackupData, KeySummary, Output, Request, UserSummary};
use crate::accounts::{AccountError, Accounts, Actor, KeyRequest, PasswordProof};
use crate::audit::Origin;
use crate::lifecycle::PreviousKeys;

/// Runs `req`; an `Err` is the message the CLI prints.
pub async fn execute(accounts: Accounts<'_>, req: Request) -> Result<Output, AccountError> {
    let (me, cli) = (Actor::Operator, &Origin::Cli);
    let done = |message: String| Ok(Output::Done { message });
    match req {
        Request::UserAdd {
            username,
            password,
            roles,
        } => {
            let rec = accounts
                .create_user(me, cli, &username, password, roles)
                .await?;
            Ok(Output::Created { id: rec.id })
        }
        Request::UserList => {
            let mut users = Vec::new();
            for name in accounts.usernames(me)? {
                let rec = accounts.user_named(&name)?;
                users.push(UserSummary {
                    id: rec.id,
                    roles: rec.roles,
                    username: rec.username,
                });
            }
            Ok(Output::Users { users })
        }
        Request::UserPasswd { username, password } => {
            let id = accounts.user_named(&username)?.id;
            let rec = accounts
                .set_password(me, cli, id, password, PasswordProof::None)
                .await?;
            done(format!(
                "password of {:?} changed; its tokens are revoked",
                rec.username
            ))
        }
        Request::UserRoles { username, roles } => {
            let id = accounts.user_named(&username)?.id;
            let rec = accounts.set_roles(me, cli, id, roles).await?;
            done(format!(
                "roles of {:?} are now {}; its tokens are revoked",
                rec.username,
                rec.roles.bits()
            ))
        }
        Request::UserDelete { username } => {
            let id = accounts.user_named(&username)?.id;
            let rec = accounts.delete_user(me, cli, id).await?;
            done(format!("deleted {:?}", rec.username))
        }
        Request::UserLogout { username } => {
            let id = accounts.user_named(&username)?.id;
            let rec = accounts.log_out_everywhere(me, cli, id).await?;
            done(format!("every token of {:?} is revoked", rec.username))
        }
        Request::UserMfaReset { username } => {
            let id = accounts.user_named(&username)?.id;
            let rec = accounts.mfa_reset(me, cli, id).await?;
            done(format!(
                "two-factor authentication of {:?} is off; its tokens are revoked",
                rec.username
            ))
        }
        Request::RecoverAdmin { username, password } => {
            let rec = accounts.recover_admin(me, cli, &username, password).await?;
            done(format!(
                "{:?} has a new password and every role",
                rec.username
            ))
        }
        Request::ApikeyCreate {
            owner,
            name,
            roles,
            expires_at,
        } => {
            let owner = accounts.user_named(&owner)?.id;
            let created = accounts
                .create_api_key(
                    me,
                    cli,
                    KeyRequest {
                        owner,
                        name: &name,
                        roles,
                        expires_at: expires_at.as_deref(),
                    },
                )
                .await?;
            Ok(Output::ApikeyCreated {
                id: created.id,
                key: created.key.into_inner().into(),
            })
        }
        Request::ApikeyList { owner } => {
            let owner = match owner {
                Some(name) => Some(accounts.user_named(&name)?.id),
                None => None,
            };
            let keys = accounts
                .api_keys(me, owner)?
                .into_iter()
                .map(|k| ApiKeySummary {
                    id: k.record.id,
                    name: k.record.name,
                    owner: k.owner_name,
                    roles: k.record.roles,
                    created_at: k.record.created_at,
                    last_used_at: k.record.last_used_at,
                    expires_at: k.record.expires_at,
                })
                .collect();
            Ok(Output::ApiKeys { keys })
        }
        Request::ApikeyRevoke { id } => {
            let rec = accounts.revoke_api_key(me, cli, id).await?;
            done(format!("API key {} ({:?}) is revoked", rec.id, rec.name))
        }
        Request::KeysRotate => {
            let kid = accounts.rotate_signing_key(me, cli).await?;
            done(format!(
                "new signing key {kid}; tokens signed with the previous key stay valid until they expire"
            ))
        }
        Request::KeysRotateRevokingPrevious => {
            let replaced = accounts
                .replace_signing_key(me, cli, PreviousKeys::Revoke)
                .await?;
            done(format!(
                "new signing key {}; revoked {}: every token signed before is refused from now on, \
                 so everyone must log in again",
                replaced.kid,
                match replaced.revoked.as_slice() {
                    [] => "no other key".to_string(),
                    kids => kids.join(", "),
                }
            ))
        }
        Request::KeysList => {
            let keys = accounts
                .store
                .keys()?
                .into_iter()
                .map(|k| KeySummary {
                    kid: k.kid,
                    state: format!("{:?}", k.state),
                    alg: k.alg.to_string(),
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                })
                .collect();
            Ok(Output::Keys {
                now: accounts.clock.now(),
                keys,
            })
        }
        Request::Backup => {
            // A read of every record, with writes held off meanwhile.
            let data = accounts.store.export(accounts.clock.now_millis())?;
            Ok(Output::Backup {
                bytes: data.len() as u64,
                data: BackupData(data),
            })
        }
    }
}
