//! The load and its ledger. Each [`Client`] is one thread of mixed
//! requests on users it alone owns, so its acknowledged changes have one
//! order. It records every change the daemon acknowledged (a 2xx arrived)
//! and, when the power goes, the one change it had in flight, which may
//! or may not have survived. [`verify`] then checks the restarted daemon
//! against every client's ledger and brings the ledgers in line with what
//! it found, so the next cut is judged on its own.

use reqwest::Method;
use reqwest::blocking::Client as HttpClient;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::rng::Rng;
use crate::harness::{ADMIN_PASSWORD, roles};

/// Non-admin role flags (the last-admin rule is not under test here).
const FLAGS: [&str; 5] = ["flows", "configure", "subscribe", "write", "read"];
/// A client keeps at most this many live users: the checks after each
/// cut sign every one of them in.
const MAX_USERS: usize = 8;

/// What went wrong in a cut, by kind (the report counts kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `engine-auth check` found the store inconsistent.
    CheckFailed,
    /// The daemon refused to start or never became healthy.
    WontStart,
    /// The daemon started on an empty store and seeded a new admin.
    Reseeded,
    /// An acknowledged change is gone.
    Lost,
    /// Something nobody asked for is there.
    Phantom,
    /// The daemon refused a valid request during the load (before the cut).
    LoadRefused,
    /// `compact`, `restore` or `backup` failed when no cut stopped it.
    CommandFailed,
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub kind: Kind,
    pub detail: String,
}

pub fn finding(kind: Kind, detail: impl Into<String>) -> Finding {
    Finding {
        kind,
        detail: detail.into(),
    }
}

/// A blocking HTTP client for one daemon.
pub struct Http {
    base: String,
    client: HttpClient,
}

/// A reply: status and JSON body (`Null` when not JSON).
type Answer = (u16, Value);

impl Http {
    /// Requests to the daemon on `port` from `ip` (each client its own
    /// 127.0.0.0/8 address: the daemon limits password checks in flight
    /// per address).
    pub fn new(port: u16, ip: &str) -> Http {
        let client = HttpClient::builder()
            .no_proxy()
            .local_address(ip.parse::<std::net::IpAddr>().expect("literal address"))
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        Http {
            base: format!("http://127.0.0.1:{port}/api/v1/auth"),
            client,
        }
    }

    /// `Err` when no reply arrived (the daemon is gone).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().map_err(|e| format!("{e:#}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| format!("{e:#}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn login(&self, username: &str, password: &str) -> Result<Answer, String> {
        let body = json!({"username": username, "password": password});
        self.call(Method::POST, "/login", None, Some(body))
    }

    fn refresh(&self, refresh: &str) -> Result<Answer, String> {
        let body = json!({"refreshToken": refresh});
        self.call(Method::POST, "/refresh", None, Some(body))
    }
}

fn ok(a: &Answer) -> bool {
    (200..300).contains(&a.0)
}

fn pair(v: &Value) -> (String, String) {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    (s("token"), s("refreshToken"))
}

/// A user one client created, as last acknowledged.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub id: String,
    pub password: String,
    /// The password before the last acknowledged change, if any.
    pub old_password: Option<String>,
    pub roles: Value,
    pub deleted: bool,
}

/// What a refresh token must do after the cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Issued and neither spent, logged out nor revoked: it refreshes.
    Works,
    /// Spent, logged out, or revoked by a password or role change, a
    /// deletion or "log out everywhere": refused.
    Refused,
    /// A change in flight at the cut decides: not checked.
    Either,
}

#[derive(Clone, Debug)]
struct Token {
    user: String,
    refresh: String,
    access: String,
    expect: Expect,
    why: &'static str,
    /// Its access token must be refused too (a restore replaced the key
    /// that signed it).
    access_revoked: bool,
}

/// The change a client had in flight when the power went.
#[derive(Clone, Debug)]
enum Pending {
    Create(User),
    Password { name: String, new: String },
    Roles { name: String, roles: Value },
    Delete { name: String },
    Rotate,
}

/// A client's users as they were at one instant (when a backup was
/// taken): what a restore of that backup must bring back.
#[derive(Clone, Debug)]
pub struct Snapshot {
    users: Vec<User>,
    tolerated: Vec<String>,
}

/// One client thread's ledger (and its random choices).
pub struct Client {
    idx: usize,
    rng: Rng,
    users: Vec<User>,
    tokens: Vec<Token>,
    /// Key ids of acknowledged rotations.
    pub kids: Vec<String>,
    pending: Option<Pending>,
    created: usize,
    /// Names that exist but that this client cannot use any more (a lost
    /// change left them unusable): allowed in the user list, never used.
    pub tolerated: Vec<String>,
    /// Acknowledged changes (the figures).
    pub acked: u64,
    /// Valid requests the daemon refused during the load.
    pub refused: Vec<Finding>,
}

impl Client {
    /// This client's source address.
    pub fn ip(&self) -> String {
        format!("127.0.0.{}", 10 + self.idx)
    }

    pub fn new(idx: usize, rng: Rng) -> Client {
        Client {
            idx,
            rng,
            users: Vec::new(),
            tokens: Vec::new(),
            kids: Vec::new(),
            pending: None,
            created: 0,
            tolerated: Vec::new(),
            acked: 0,
            refused: Vec::new(),
        }
    }

    /// The users as acknowledged so far.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            users: self.users.clone(),
            tolerated: self.tolerated.clone(),
        }
    }

    /// The ledger after a restore of the backup `at` was taken at: its
    /// users with their passwords and roles then (a password set since
    /// must no longer sign in; a user created since is unrequested), no
    /// rotation (the restore made the only key), and every token issued so
    /// far refused, access tokens too. The random choices go on as they
    /// were, so no name or password is made twice.
    pub fn rewind_to(&mut self, at: &Snapshot) {
        let now = std::mem::take(&mut self.users);
        self.users = at.users.clone();
        for u in &mut self.users {
            if let Some(later) = now.iter().find(|n| n.name == u.name)
                && later.password != u.password
            {
                u.old_password = Some(later.password.clone());
            }
        }
        self.tolerated = at.tolerated.clone();
        self.kids.clear();
        self.pending = None;
        for t in &mut self.tokens {
            t.expect = Expect::Refused;
            t.why = "issued before the restore";
            t.access_revoked = true;
        }
    }

    fn random_roles(&mut self) -> Value {
        let flags: Vec<&str> = FLAGS.iter().copied().filter(|_| self.rng.coin()).collect();
        roles(&flags)
    }

    fn password(&mut self) -> String {
        format!("pw-{:016x}", self.rng.next_u64())
    }

    fn live_users(&self) -> Vec<usize> {
        (0..self.users.len())
            .filter(|&i| !self.users[i].deleted)
            .collect()
    }

    fn pick_user(&mut self) -> Option<usize> {
        let live = self.live_users();
        if live.is_empty() {
            return None;
        }
        Some(live[self.rng.below(live.len() as u64) as usize])
    }

    /// Every token of `name` that still works is refused from now on
    /// (`expect`), or undecided while the change is in flight.
    fn revoke_tokens(&mut self, name: &str, expect: Expect, why: &'static str) {
        for t in self.tokens.iter_mut().filter(|t| t.user == name) {
            if t.expect == Expect::Works {
                t.expect = expect;
                t.why = why;
            }
        }
    }

    /// Runs requests until `stop` or until the daemon stops answering.
    /// `admin` is this client's admin session for the round.
    pub fn run(&mut self, http: &Http, stop: &AtomicBool) {
        let admin = match http.login("admin", ADMIN_PASSWORD) {
            Ok(a) if ok(&a) => {
                self.acked += 1;
                let (access, refresh) = pair(&a.1);
                self.tokens.push(Token {
                    user: "admin".into(),
                    refresh,
                    access: access.clone(),
                    expect: Expect::Works,
                    why: "admin login",
                    access_revoked: false,
                });
                access
            }
            Ok(a) => {
                self.refuse(format!("admin login answered {}: {}", a.0, a.1));
                return;
            }
            Err(_) => return,
        };
        while !stop.load(Ordering::SeqCst) {
            if self.step(http, &admin).is_err() {
                return;
            }
        }
    }

    fn refuse(&mut self, what: String) {
        self.refused.push(finding(
            Kind::LoadRefused,
            format!("client {}: {what}", self.idx),
        ));
    }

    /// One request. `Err` when no reply came: its change is pending.
    fn step(&mut self, http: &Http, admin: &str) -> Result<(), ()> {
        let live = self.live_users().len();
        let choice = if live == 0 { 0 } else { self.rng.below(100) };
        match choice {
            0..=11 if live < MAX_USERS => self.create(http, admin),
            0..=21 => self.admin_password(http, admin),
            22..=29 => self.self_password(http),
            30..=39 => self.set_roles(http, admin),
            40..=45 => self.delete(http, admin),
            46..=63 => self.login(http),
            64..=83 => self.refresh(http),
            84..=91 => self.logout(http),
            92..=95 => self.logout_everywhere(http, admin),
            _ => self.rotate(http, admin),
        }
    }

    /// Sends a change; on a 2xx returns the body, on no reply records
    /// `pending` and fails, on another status records a refusal.
    fn change(
        &mut self,
        http: &Http,
        req: (Method, &str, Option<&str>, Value),
        pending: Pending,
    ) -> Result<Option<Value>, ()> {
        let (method, path, token, body) = req;
        match http.call(method.clone(), path, token, Some(body)) {
            Ok(a) if ok(&a) => {
                self.acked += 1;
                Ok(Some(a.1))
            }
            Ok(a) => {
                self.refuse(format!("{method} {path} answered {}: {}", a.0, a.1));
                Ok(None)
            }
            Err(_) => {
                self.pending = Some(pending);
                Err(())
            }
        }
    }

    fn create(&mut self, http: &Http, admin: &str) -> Result<(), ()> {
        self.created += 1;
        let mut user = User {
            name: format!("pc{}-{}", self.idx, self.created),
            id: String::new(),
            password: self.password(),
            old_password: None,
            roles: self.random_roles(),
            deleted: false,
        };
        let body = json!({"username": user.name, "password": user.password, "roles": user.roles});
        let req = (Method::POST, "/user", Some(admin), body);
        if let Some(v) = self.change(http, req, Pending::Create(user.clone()))? {
            user.id = v["_id"].as_str().unwrap_or_default().to_string();
            self.users.push(user);
        }
        Ok(())
    }

    fn admin_password(&mut self, http: &Http, admin: &str) -> Result<(), ()> {
        let Some(i) = self.pick_user() else {
            return Ok(());
        };
        let new = self.password();
        self.set_password(http, i, admin, json!({"password": new}), new)
    }

    fn self_password(&mut self, http: &Http) -> Result<(), ()> {
        let Some(i) = self.pick_user() else {
            return Ok(());
        };
        let Some(access) = self.login_user(http, i)? else {
            return Ok(());
        };
        let new = self.password();
        let body = json!({"password": new, "currentPassword": self.users[i].password});
        self.set_password(http, i, &access, body, new)
    }

    fn set_password(
        &mut self,
        http: &Http,
        i: usize,
        token: &str,
        body: Value,
        new: String,
    ) -> Result<(), ()> {
        let name = self.users[i].name.clone();
        let path = format!("/user/password/{}", self.users[i].id);
        let pending = Pending::Password {
            name: name.clone(),
            new: new.clone(),
        };
        let result = self.change(http, (Method::PATCH, &path, Some(token), body), pending);
        if result.is_err() {
            self.revoke_tokens(&name, Expect::Either, "password change in flight");
        }
        if result?.is_some() {
            let u = &mut self.users[i];
            u.old_password = Some(std::mem::replace(&mut u.password, new));
            self.revoke_tokens(&name, Expect::Refused, "revoked by a password change");
        }
        Ok(())
    }

    fn set_roles(&mut self, http: &Http, admin: &str) -> Result<(), ()> {
        let Some(i) = self.pick_user() else {
            return Ok(());
        };
        let name = self.users[i].name.clone();
        let roles = self.random_roles();
        let path = format!("/user/roles/{}", self.users[i].id);
        let pending = Pending::Roles {
            name: name.clone(),
            roles: roles.clone(),
        };
        let req = (
            Method::PATCH,
            path.as_str(),
            Some(admin),
            json!({"roles": roles}),
        );
        let result = self.change(http, req, pending);
        if result.is_err() {
            self.revoke_tokens(&name, Expect::Either, "role change in flight");
        }
        if result?.is_some() {
            self.users[i].roles = roles;
            self.revoke_tokens(&name, Expect::Refused, "revoked by a role change");
        }
        Ok(())
    }

    fn delete(&mut self, http: &Http, admin: &str) -> Result<(), ()> {
        let Some(i) = self.pick_user() else {
            return Ok(());
        };
        let name = self.users[i].name.clone();
        let path = format!("/user/{}", self.users[i].id);
        let pending = Pending::Delete { name: name.clone() };
        match http.call(Method::DELETE, &path, Some(admin), None) {
            Ok(a) if ok(&a) => {
                self.acked += 1;
                self.users[i].deleted = true;
                self.revoke_tokens(&name, Expect::Refused, "its user was deleted");
                Ok(())
            }
            Ok(a) => {
                self.refuse(format!("DELETE {path} answered {}: {}", a.0, a.1));
                Ok(())
            }
            Err(_) => {
                self.pending = Some(pending);
                self.revoke_tokens(&name, Expect::Either, "deletion in flight");
                Err(())
            }
        }
    }

    /// Signs user `i` in; returns its access token. A login is a change
    /// too (a session); one lost in flight leaves nothing to check.
    fn login_user(&mut self, http: &Http, i: usize) -> Result<Option<String>, ()> {
        let (name, password) = (self.users[i].name.clone(), self.users[i].password.clone());
        match http.login(&name, &password) {
            Ok(a) if ok(&a) => {
                self.acked += 1;
                let (access, refresh) = pair(&a.1);
                self.tokens.push(Token {
                    user: name,
                    refresh,
                    access: access.clone(),
                    expect: Expect::Works,
                    why: "login",
                    access_revoked: false,
                });
                Ok(Some(access))
            }
            Ok(a) => {
                self.refuse(format!("login of {name} answered {}: {}", a.0, a.1));
                Ok(None)
            }
            Err(_) => Err(()),
        }
    }

    fn login(&mut self, http: &Http) -> Result<(), ()> {
        match self.pick_user() {
            Some(i) => self.login_user(http, i).map(|_| ()),
            None => Ok(()),
        }
    }

    fn pick_token(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.tokens.len())
            .filter(|&i| self.tokens[i].expect == Expect::Works)
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[self.rng.below(live.len() as u64) as usize])
    }

    fn refresh(&mut self, http: &Http) -> Result<(), ()> {
        let Some(t) = self.pick_token() else {
            return Ok(());
        };
        match http.refresh(&self.tokens[t].refresh) {
            Ok(a) if ok(&a) => {
                self.acked += 1;
                let (access, refresh) = pair(&a.1);
                self.tokens[t].expect = Expect::Refused;
                self.tokens[t].why = "spent by a refresh";
                let user = self.tokens[t].user.clone();
                self.tokens.push(Token {
                    user,
                    refresh,
                    access,
                    expect: Expect::Works,
                    why: "refresh",
                    access_revoked: false,
                });
                Ok(())
            }
            Ok(a) => {
                self.refuse(format!("refresh answered {}: {}", a.0, a.1));
                self.tokens[t].expect = Expect::Either;
                Ok(())
            }
            Err(_) => {
                self.tokens[t].expect = Expect::Either;
                Err(())
            }
        }
    }

    fn logout(&mut self, http: &Http) -> Result<(), ()> {
        let Some(t) = self.pick_token() else {
            return Ok(());
        };
        let tok = self.tokens[t].clone();
        let body = json!({"refreshToken": tok.refresh});
        match http.call(Method::POST, "/logout", Some(&tok.access), Some(body)) {
            Ok(a) if ok(&a) => {
                self.acked += 1;
                self.tokens[t].expect = Expect::Refused;
                self.tokens[t].why = "logged out";
                Ok(())
            }
            Ok(a) => {
                self.refuse(format!("logout answered {}: {}", a.0, a.1));
                self.tokens[t].expect = Expect::Either;
                Ok(())
            }
            Err(_) => {
                self.tokens[t].expect = Expect::Either;
                Err(())
            }
        }
    }

    fn logout_everywhere(&mut self, http: &Http, admin: &str) -> Result<(), ()> {
        let Some(i) = self.pick_user() else {
            return Ok(());
        };
        let name = self.users[i].name.clone();
        let path = format!("/user/logout/{}", self.users[i].id);
        match http.call(Method::POST, &path, Some(admin), None) {
            Ok(a) if ok(&a) => {
                self.acked += 1;
                self.revoke_tokens(&name, Expect::Refused, "logged out everywhere");
                Ok(())
            }
            Ok(a) => {
                self.refuse(format!("POST {path} answered {}: {}", a.0, a.1));
                Ok(())
            }
            Err(_) => {
                self.revoke_tokens(&name, Expect::Either, "log out everywhere in flight");
                Err(())
            }
        }
    }

    fn rotate(&mut self, http: &Http, admin: &str) -> Result<(), ()> {
        let req = (
            Method::POST,
            "/keys/rotate",
            Some(admin),
            json!({"revokePrevious": false}),
        );
        if let Some(v) = self.change(http, req, Pending::Rotate)? {
            self.kids
                .push(v["kid"].as_str().unwrap_or_default().to_string());
        }
        Ok(())
    }
}

/// Everything the clients were told, checked against the restarted
/// daemon (signed in as admin with `admin`), and against `kids`, the key
/// ids `keys list` showed before the start. `known_kids` are the ids seen
/// so far (updated). Brings every ledger in line with what it found.
pub fn verify(
    http: &Http,
    admin: &str,
    clients: &mut [Client],
    kids: &BTreeSet<String>,
    known_kids: &mut BTreeSet<String>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut lost = |detail: String| found.push(finding(Kind::Lost, detail));
    let listed: BTreeSet<String> = match http.call(Method::GET, "/users", Some(admin), None) {
        Ok((200, Value::Array(names))) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect(),
        other => {
            lost(format!("GET /users as admin: {other:?}"));
            return found;
        }
    };
    let mut expected_names: HashSet<String> = HashSet::from(["admin".to_string()]);

    // Refresh tokens that must still work, first: presenting a spent one
    // afterwards ends its whole session (reuse detection).
    for c in clients.iter() {
        for t in c.tokens.iter().filter(|t| t.expect == Expect::Works) {
            match http.refresh(&t.refresh) {
                Ok(a) if ok(&a) => {}
                other => lost(format!(
                    "client {}: a refresh token of {:?} ({}, acknowledged) is refused: {other:?}",
                    c.idx, t.user, t.why
                )),
            }
        }
    }
    for c in clients.iter() {
        for t in c.tokens.iter().filter(|t| t.expect == Expect::Refused) {
            match http.refresh(&t.refresh) {
                Ok((401, _)) => {}
                other => lost(format!(
                    "client {}: a refresh token of {:?} that was {} (acknowledged) refreshes again: {other:?}",
                    c.idx, t.user, t.why
                )),
            }
            if t.access_revoked {
                match http.call(Method::GET, "/users", Some(&t.access), None) {
                    Ok((401, _)) => {}
                    other => lost(format!(
                        "client {}: an access token of {:?} {} is accepted: {other:?}",
                        c.idx, t.user, t.why
                    )),
                }
            }
        }
    }

    // Keys: every acknowledged rotation's key is there; then each rotation
    // in flight may account for one more (once all acknowledged ones are
    // known, so it cannot claim one of theirs).
    for c in clients.iter_mut() {
        for k in c.kids.drain(..) {
            if !kids.contains(&k) {
                lost(format!(
                    "client {}: signing key {k} (rotation acknowledged) is not in `keys list`",
                    c.idx
                ));
            }
            known_kids.insert(k);
        }
    }
    for c in clients.iter() {
        if matches!(c.pending, Some(Pending::Rotate))
            && let Some(k) = kids.iter().find(|k| !known_kids.contains(*k))
        {
            known_kids.insert(k.clone());
        }
    }

    for c in clients.iter_mut() {
        let pending = c.pending.take();
        if let Some(Pending::Create(u)) = &pending {
            expected_names.insert(u.name.clone());
            if listed.contains(&u.name) {
                // It was created after all: find its id, then check it
                // like any other user.
                let path = format!("/user/{}", u.name);
                if let Ok((200, v)) = http.call(Method::GET, &path, Some(admin), None) {
                    let mut u = u.clone();
                    u.id = v["_id"].as_str().unwrap_or_default().to_string();
                    c.users.push(u);
                }
            }
        }
        expected_names.extend(c.tolerated.iter().cloned());
        let mut keep = Vec::new();
        for mut u in std::mem::take(&mut c.users) {
            expected_names.insert(u.name.clone());
            let in_list = listed.contains(&u.name);
            let (mut passwords, mut roles) = (vec![u.password.clone()], vec![u.roles.clone()]);
            let mut may_be_deleted = u.deleted;
            match &pending {
                Some(Pending::Password { name, new }) if *name == u.name => {
                    passwords.push(new.clone())
                }
                Some(Pending::Roles { name, roles: r }) if *name == u.name => roles.push(r.clone()),
                Some(Pending::Delete { name }) if *name == u.name => may_be_deleted = true,
                _ => {}
            }
            if u.deleted {
                if in_list {
                    lost(format!(
                        "client {}: user {:?} was deleted (acknowledged) but is listed again",
                        c.idx, u.name
                    ));
                }
                match http.login(&u.name, &u.password) {
                    Ok((401, _)) => {}
                    other => lost(format!(
                        "client {}: deleted user {:?} signs in: {other:?}",
                        c.idx, u.name
                    )),
                }
                if !in_list {
                    continue; // gone for good, as it should be
                }
            } else if !in_list {
                if !may_be_deleted {
                    lost(format!(
                        "client {}: user {:?} (created, acknowledged) is missing from the user list",
                        c.idx, u.name
                    ));
                }
                continue;
            }
            // Listed: it must sign in with its password as last acknowledged.
            let works = passwords
                .iter()
                .find(|p| matches!(http.login(&u.name, p), Ok(a) if ok(&a)))
                .cloned();
            match works {
                Some(p) => {
                    if p != u.password {
                        u.old_password = Some(std::mem::replace(&mut u.password, p));
                    }
                }
                None => {
                    lost(format!(
                        "client {}: user {:?} does not sign in with its password as last \
                         acknowledged ({} candidate(s))",
                        c.idx,
                        u.name,
                        passwords.len()
                    ));
                    c.tolerated.push(u.name.clone());
                    continue;
                }
            }
            if let Some(old) = u.old_password.clone()
                && !passwords.contains(&old)
                && matches!(http.login(&u.name, &old), Ok(a) if ok(&a))
            {
                lost(format!(
                    "client {}: user {:?} still signs in with its password from before an \
                     acknowledged change",
                    c.idx, u.name
                ));
            }
            let path = format!("/user/roles/{}", u.id);
            match http.call(Method::GET, &path, Some(admin), None) {
                Ok((200, r)) if roles.contains(&r) => u.roles = r,
                Ok((200, r)) => {
                    lost(format!(
                        "client {}: user {:?} has roles {r} instead of {} (acknowledged)",
                        c.idx, u.name, u.roles
                    ));
                    u.roles = r;
                }
                other => {
                    lost(format!(
                        "client {}: roles of {:?}: {other:?}",
                        c.idx, u.name
                    ));
                    c.tolerated.push(u.name.clone());
                    continue;
                }
            }
            u.deleted = false;
            keep.push(u);
        }
        c.users = keep;
        // Tokens were checked above (which spent or revoked most of
        // them): a new round starts with new sessions.
        c.tokens.clear();
    }
    for name in &listed {
        if !expected_names.contains(name) {
            found.push(finding(
                Kind::Phantom,
                format!("user {name:?}, which nobody created, is listed"),
            ));
        }
    }
    for k in kids {
        if !known_kids.contains(k) {
            found.push(finding(
                Kind::Phantom,
                format!("signing key {k}, which no rotation made, is in `keys list`"),
            ));
            known_kids.insert(k.clone());
        }
    }
    found
}
