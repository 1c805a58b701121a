//! User and role management (admins; reading one's own roles and changing
//! one's own password are open to the user itself).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    AdminErrors, ApiResult, Body, IdBody, JsonBodyErrors, OK, SelfOrAdminErrors, State, decided_by,
    origin, parse_id,
};
use crate::accounts::{Actor, PasswordProof};
use crate::domain::{Roles, Secret};
use crate::http::auth::{Admin, Caller};
use crate::http::error::ErrorBody;

#[derive(Deserialize, ToSchema)]
pub struct NewUserBody {
    #[schema(min_length = 1, max_length = 256, example = "bobz@home.com")]
    username: String,
    #[schema(value_type = String, min_length = 8, max_length = 1024, example = "12345678")]
    password: Secret,
    roles: Roles,
}
decided_by!(NewUserBody, NEW_USER);

#[utoipa::path(post, path = "/api/v1/auth/user", tag = "auth", request_body = NewUserBody,
    security(("bearer" = [])),
    responses((status = 200, description = "Created", body = IdBody), JsonBodyErrors, AdminErrors,
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 409, description = "Username taken (case-insensitively)", body = ErrorBody)))]
pub async fn create_user(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    body: Body<NewUserBody>,
) -> ApiResult {
    let NewUserBody {
        username,
        password,
        roles,
    } = body.into_inner();
    let rec = state
        .accounts()
        .create_user(
            Actor::User(&admin.user),
            &origin(&req),
            &username,
            password,
            roles,
        )
        .await?;
    Ok(HttpResponse::Ok().json(IdBody { id: rec.id }))
}

#[utoipa::path(get, path = "/api/v1/auth/user/{username}", tag = "auth",
    params(("username" = String, Path, description = "Username (case-insensitive)")), security(("bearer" = [])),
    responses((status = 200, description = "The user's id", body = IdBody), AdminErrors,
        (status = 404, description = "Unknown user", body = ErrorBody)))]
pub async fn get_user_id(state: State, _: Admin, username: web::Path<String>) -> ApiResult {
    let user = state.accounts().user_named(&username)?;
    Ok(HttpResponse::Ok().json(IdBody { id: user.id }))
}

#[utoipa::path(get, path = "/api/v1/auth/users", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Usernames as given", body = Vec<String>,
            example = json!(["admin", "bobz@home.com", "chris@home.com"])), AdminErrors))]
pub async fn list_users(state: State, _: Admin) -> ApiResult {
    // The cached, pre-serialized list: the hot admin read.
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(web::Bytes::from_owner(state.store.usernames_json()?)))
}

#[utoipa::path(get, path = "/api/v1/auth/user/roles/{_id}", tag = "auth",
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Role profile", body = Roles), SelfOrAdminErrors))]
pub async fn get_roles(state: State, caller: Caller, id: web::Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let roles = state.accounts().roles_of(Actor::User(&caller.user), id)?;
    Ok(HttpResponse::Ok().json(roles))
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct RolesBody {
    roles: Roles,
}
decided_by!(RolesBody, ROLES);

#[utoipa::path(patch, path = "/api/v1/auth/user/roles/{_id}", tag = "auth", request_body = RolesBody,
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "New roles; the user's tokens are revoked", body = RolesBody),
        JsonBodyErrors, AdminErrors,
        (status = 400, description = "Invalid id or body", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody),
        (status = 409, description = "Would leave no admin", body = ErrorBody)))]
pub async fn set_roles(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    id: web::Path<String>,
    body: Body<RolesBody>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let roles = body.into_inner().roles;
    let rec = state
        .accounts()
        .set_roles(Actor::User(&admin.user), &origin(&req), id, roles)
        .await?;
    Ok(HttpResponse::Ok().json(RolesBody { roles: rec.roles }))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    #[schema(value_type = String, min_length = 8, max_length = 1024)]
    password: Secret,
    #[serde(rename = "currentPassword")]
    #[schema(value_type = Option<String>)]
    current_password: Option<Secret>,
}
decided_by!(PasswordBody, PASSWORD);

#[utoipa::path(patch, path = "/api/v1/auth/user/password/{_id}", tag = "auth", request_body = PasswordBody,
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Changed; the user's tokens are revoked", body = super::ResultBody),
        JsonBodyErrors, SelfOrAdminErrors,
        (status = 429, description = "currentPassword throttled like a login (Retry-After)", body = ErrorBody),
        (status = 503, description = "The password-hashing queue is full (Retry-After)", body = ErrorBody)))]
pub async fn set_password(
    req: HttpRequest,
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: Body<PasswordBody>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let PasswordBody {
        password,
        current_password,
    } = body.into_inner();
    let actor = Actor::User(&caller.user);
    let proof = match current_password {
        Some(current) => PasswordProof::Current(current),
        None => PasswordProof::None,
    };
    state
        .accounts()
        .set_password(actor, &origin(&req), id, password, proof)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
}

#[utoipa::path(delete, path = "/api/v1/auth/user/{_id}", tag = "auth",
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = super::ResultBody), AdminErrors,
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody),
        (status = 409, description = "Would leave no admin", body = ErrorBody)))]
pub async fn delete_user(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    id: web::Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    state
        .accounts()
        .delete_user(Actor::User(&admin.user), &origin(&req), id)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
}
