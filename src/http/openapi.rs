//! The OpenAPI 3 description, generated from the handlers' annotations and
//! the body types, so it cannot drift from the code; served at
//! `/api/v1/docs/json`. [`routes`] is the single list of what the server
//! exposes: `configure` registers exactly these, and a test checks each one
//! is in the document.

use actix_web::HttpResponse;
use actix_web::http::Method;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::body;
use super::cookies::{ACCESS_COOKIE, REFRESH_COOKIE, TokenResponse};
use super::error::ErrorBody;
use super::handlers::{self, *};
use crate::domain::Roles;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "engine-auth",
        description = "The flow engine's authorization API: login, token refresh, user and role management."
    ),
    paths(
        handlers::health,
        handlers::login,
        handlers::refresh,
        handlers::logout,
        handlers::create_user,
        handlers::list_users,
        handlers::get_user_id,
        handlers::get_roles,
        handlers::set_roles,
        handlers::set_password,
        handlers::logout_user,
        handlers::delete_user,
        handlers::rotate_key,
        handlers::jwks,
        handlers::jwks_well_known,
        handlers::verify,
        handlers::mfa_generate,
        handlers::mfa_enable,
        handlers::mfa_disable,
        handlers::mfa_reset,
        handlers::me,
        handlers::mqtt_user,
        handlers::mqtt_superuser,
        handlers::mqtt_acl,
        handlers::create_api_key,
        handlers::list_api_keys,
        handlers::revoke_api_key,
        handlers::list_accounts,
        handlers::list_sessions,
        handlers::end_session,
        handlers::list_keys,
        handlers::list_audit,
    ),
    components(schemas(
        ErrorBody, TokenResponse, Roles, LoginBody, RefreshBody, LogoutBody, NewUserBody, RolesBody,
        PasswordBody, IdBody, ResultBody, HealthBody, RotateKeyBody, RotatedKeyBody,
        MfaGenerateBody, MfaCodeBody, MfaSecretBody, RecoveryCodesBody, MeBody,
        MqttUserParams, MqttSuperuserParams, MqttAclParams, MqttAllowed, ApiKeyBody,
        NewApiKeyBody, ApiKeyInfo, AccountInfo, SessionInfo, SigningKeyInfo, AuditEventInfo, JwksBody, JwkBody
    )),
    modifiers(&BearerScheme, &DecidedSchemas)
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
        // The refresh token of a browser session (`mode: "cookie"`).
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(REFRESH_COOKIE))),
        );
        // The access token of a browser session, read by /verify only.
        components.add_security_scheme(
            "access_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(ACCESS_COOKIE))),
        );
    }
}

/// One route the server exposes.
/// The request bodies' schemas are the ones that decide them
/// (`http::body::schema`), not what the derive would infer from the Rust
/// types: the document says exactly what is accepted.
struct DecidedSchemas;

impl Modify for DecidedSchemas {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use crate::http::body::RequestBody;
        use utoipa::ToSchema;
        fn decided<T: RequestBody + ToSchema>() -> (String, &'static body::Schema) {
            (T::name().into_owned(), T::SCHEMA)
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, schema) in [
            decided::<LoginBody>(),
            decided::<RefreshBody>(),
            decided::<LogoutBody>(),
            decided::<NewUserBody>(),
            decided::<RolesBody>(),
            decided::<PasswordBody>(),
            decided::<RotateKeyBody>(),
            decided::<MfaGenerateBody>(),
            decided::<MfaCodeBody>(),
            decided::<ApiKeyBody>(),
        ] {
            match serde_json::from_value(schema.to_json_schema()) {
                Ok(s) => {
                    components.schemas.insert(name, s);
                }
                // The schemas are constants; a unit test renders each.
                Err(e) => log::error!("OpenAPI schema of {name}: {e}"),
            }
        }
    }
}

pub struct RouteSpec {
    pub method: Method,
    /// What actix matches.
    pub pattern: &'static str,
    /// The same path as the document names it.
    pub documented: &'static str,
    pub handler: fn() -> actix_web::Route,
    /// Answers every method (forward-auth: whatever the proxy forwards),
    /// not only `method`, which the document names.
    pub any_method: bool,
}

/// Every route. GET and DELETE on `/user/…` share one actix resource (a
/// username for GET, an id for DELETE, as in the original API).
pub fn routes() -> Vec<RouteSpec> {
    use actix_web::web::to;
    fn r(
        method: Method,
        pattern: &'static str,
        documented: &'static str,
        handler: fn() -> actix_web::Route,
    ) -> RouteSpec {
        RouteSpec {
            method,
            pattern,
            documented,
            handler,
            any_method: false,
        }
    }
    vec![
        r(Method::GET, "/health", "/health", || to(health)),
        r(Method::GET, "/api/v1/health", "/health", || to(health)),
        r(
            Method::GET,
            "/api/v1/docs/json",
            "/api/v1/docs/json",
            || to(serve_json),
        ),
        r(
            Method::POST,
            "/api/v1/auth/login",
            "/api/v1/auth/login",
            || to(login),
        ),
        r(
            Method::POST,
            "/api/v1/auth/refresh",
            "/api/v1/auth/refresh",
            || to(refresh),
        ),
        r(
            Method::POST,
            "/api/v1/auth/logout",
            "/api/v1/auth/logout",
            || to(logout),
        ),
        r(
            Method::POST,
            "/api/v1/auth/user",
            "/api/v1/auth/user",
            || to(create_user),
        ),
        r(
            Method::GET,
            "/api/v1/auth/users",
            "/api/v1/auth/users",
            || to(list_users),
        ),
        r(
            Method::GET,
            "/api/v1/auth/user/roles/{_id}",
            "/api/v1/auth/user/roles/{_id}",
            || to(get_roles),
        ),
        r(
            Method::PATCH,
            "/api/v1/auth/user/roles/{_id}",
            "/api/v1/auth/user/roles/{_id}",
            || to(set_roles),
        ),
        r(
            Method::PATCH,
            "/api/v1/auth/user/password/{_id}",
            "/api/v1/auth/user/password/{_id}",
            || to(set_password),
        ),
        r(
            Method::POST,
            "/api/v1/auth/user/logout/{_id}",
            "/api/v1/auth/user/logout/{_id}",
            || to(logout_user),
        ),
        r(
            Method::POST,
            "/api/v1/auth/keys/rotate",
            "/api/v1/auth/keys/rotate",
            || to(rotate_key),
        ),
        r(
            Method::GET,
            "/api/v1/auth/jwks.json",
            "/api/v1/auth/jwks.json",
            || to(jwks),
        ),
        r(
            Method::GET,
            "/.well-known/jwks.json",
            "/.well-known/jwks.json",
            || to(jwks_well_known),
        ),
        r(
            Method::POST,
            "/api/v1/auth/mfa/generate",
            "/api/v1/auth/mfa/generate",
            || to(mfa_generate),
        ),
        r(
            Method::POST,
            "/api/v1/auth/mfa/enable",
            "/api/v1/auth/mfa/enable",
            || to(mfa_enable),
        ),
        r(
            Method::POST,
            "/api/v1/auth/mfa/disable",
            "/api/v1/auth/mfa/disable",
            || to(mfa_disable),
        ),
        r(
            Method::DELETE,
            "/api/v1/auth/user/mfa/{_id}",
            "/api/v1/auth/user/mfa/{_id}",
            || to(mfa_reset),
        ),
        r(Method::GET, "/api/v1/auth/me", "/api/v1/auth/me", || to(me)),
        r(
            Method::POST,
            "/api/v1/auth/apikeys",
            "/api/v1/auth/apikeys",
            || to(create_api_key),
        ),
        r(
            Method::GET,
            "/api/v1/auth/apikeys",
            "/api/v1/auth/apikeys",
            || to(list_api_keys),
        ),
        r(
            Method::DELETE,
            "/api/v1/auth/apikeys/{id}",
            "/api/v1/auth/apikeys/{id}",
            || to(revoke_api_key),
        ),
        r(
            Method::GET,
            "/api/v1/auth/accounts",
            "/api/v1/auth/accounts",
            || to(list_accounts),
        ),
        r(
            Method::GET,
            "/api/v1/auth/sessions",
            "/api/v1/auth/sessions",
            || to(list_sessions),
        ),
        r(
            Method::DELETE,
            "/api/v1/auth/sessions/{id}",
            "/api/v1/auth/sessions/{id}",
            || to(end_session),
        ),
        r(
            Method::GET,
            "/api/v1/auth/keys",
            "/api/v1/auth/keys",
            || to(list_keys),
        ),
        r(
            Method::GET,
            "/api/v1/auth/audit",
            "/api/v1/auth/audit",
            || to(list_audit),
        ),
        r(
            Method::GET,
            "/api/v1/auth/user/{key}",
            "/api/v1/auth/user/{username}",
            || to(get_user_id),
        ),
        r(
            Method::POST,
            "/api/v1/auth/mqtt/user",
            "/api/v1/auth/mqtt/user",
            || to(mqtt_user),
        ),
        r(
            Method::POST,
            "/api/v1/auth/mqtt/superuser",
            "/api/v1/auth/mqtt/superuser",
            || to(mqtt_superuser),
        ),
        r(
            Method::POST,
            "/api/v1/auth/mqtt/acl",
            "/api/v1/auth/mqtt/acl",
            || to(mqtt_acl),
        ),
        // Forward-auth answers whatever method the proxy forwards; the
        // document names GET.
        RouteSpec {
            any_method: true,
            ..r(
                Method::GET,
                "/api/v1/auth/verify",
                "/api/v1/auth/verify",
                || to(verify),
            )
        },
        r(
            Method::DELETE,
            "/api/v1/auth/user/{key}",
            "/api/v1/auth/user/{_id}",
            || to(delete_user),
        ),
    ]
}

/// The document as JSON, rendered once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}

pub async fn serve_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_the_server_exposes_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(json()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let routes = routes();
        for r in &routes {
            if r.documented == "/api/v1/docs/json" {
                continue; // the document itself
            }
            let item = paths
                .get(r.documented)
                .unwrap_or_else(|| panic!("{} is not documented", r.documented));
            let m = r.method.as_str().to_lowercase();
            assert!(
                item.get(&m).is_some(),
                "{} {} is not documented",
                r.method,
                r.documented
            );
        }
        let documented_ops: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        // Every documented operation is served too (health is served twice).
        assert_eq!(documented_ops, routes.len() - 2);
    }

    #[test]
    fn document_has_the_error_shape_and_bearer_scheme() {
        let doc: serde_json::Value = serde_json::from_str(json()).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
        let err = &doc["components"]["schemas"]["ErrorBody"];
        for field in ["statusCode", "error", "message"] {
            assert!(err["properties"].get(field).is_some(), "{field}");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        // The request bodies are documented by the schemas that decide them.
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["LoginBody"], body::LOGIN.to_json_schema());
        assert_eq!(schemas["PasswordBody"], body::PASSWORD.to_json_schema());
        assert_eq!(schemas["NewUserBody"], body::NEW_USER.to_json_schema());
        assert_eq!(
            schemas["RotateKeyBody"],
            body::schema::KEY_ROTATION.to_json_schema()
        );
        assert_eq!(
            schemas["MfaGenerateBody"],
            body::MFA_GENERATE.to_json_schema()
        );
        assert_eq!(schemas["MfaCodeBody"], body::MFA_CODE.to_json_schema());
        assert_eq!(schemas["ApiKeyBody"], body::API_KEY.to_json_schema());
        let roles = &doc["components"]["schemas"]["Roles"];
        assert_eq!(roles["required"].as_array().unwrap().len(), 6);
        assert_eq!(roles["additionalProperties"], false);
    }
}
