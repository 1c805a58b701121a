// engine-auth admin console. Plain JavaScript, no framework. The access
// token lives in this closure only (never in web storage or a cookie the
// page can read); the refresh token is the HttpOnly cookie
// that /login sets in cookie mode, which only /refresh and /logout read.
// Text from the server is only ever set as textContent, never as HTML.
(function () {
  "use strict";

  var API = "/api/v1/auth";
  var ROLES = ["admin", "flows", "configure", "subscribe", "write", "read"];
  var EVENTS = [
    "login_ok", "login_failed", "throttled", "refresh", "refresh_failed",
    "refresh_reuse_detected", "logout", "logout_all", "sessions_evicted",
    "user_created", "user_roles_changed", "user_password_changed",
    "password_change_failed", "password_guessing", "user_deleted",
    "admin_recovered", "mfa_enabled", "mfa_disabled", "mfa_reset", "otp_failed",
    "mfa_generate_failed", "key_rotated", "key_deleted", "key_revoked",
    "apikey_created", "apikey_used", "apikey_revoked", "mqtt_login_ok",
    "mqtt_login_failed"
  ];

  // ---- session state (memory only) ------------------------------------
  var token = null;
  var refreshTimer = null;
  var me = null;
  var users = [];

  function $(id) { return document.getElementById(id); }

  function el(tag, props) {
    var e = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        if (k === "text") e.textContent = props[k];
        else if (k === "className") e.className = props[k];
        else e.setAttribute(k, props[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  function say(id, text) { $(id).textContent = text || ""; }

  function when(iso) {
    if (!iso) return "never";
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  function age(iso) {
    var s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 129600) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " days";
  }

  function browser(ua) {
    if (!ua) return "unknown";
    var m = /(Edg|OPR|Firefox|Chrome|Chromium|Safari|curl|Node-RED)\/([0-9]+)/.exec(ua);
    var os = /Android|iPhone|iPad|Windows|Mac OS X|Linux/.exec(ua);
    return (m ? m[1].replace("Edg", "Edge").replace("OPR", "Opera") + " " + m[2] : ua.slice(0, 40)) + (os ? " on " + os[0] : "");
  }

  function rolesText(r) {
    var on = ROLES.filter(function (k) { return r && r[k]; });
    return on.length ? on.join(", ") : "none";
  }

  // ---- API -------------------------------------------------------------
  function ApiError(status, message) { this.status = status; this.message = message; }

  function request(method, path, body, auth) {
    var headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && token) headers.Authorization = "Bearer " + token;
    return fetch(API + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) {
          var msg = data && data.message ? data.message : "The server answered " + res.status;
          throw new ApiError(res.status, msg);
        }
        return data;
      });
    }, function () {
      throw new ApiError(0, "Cannot reach the gateway: check the network and try again");
    });
  }

  // A call as the signed-in user; a 401 gets one refresh and one retry,
  // and a failed refresh ends the session (back to sign-in).
  function api(method, path, body) {
    return request(method, path, body, true).catch(function (e) {
      if (!(e instanceof ApiError) || e.status !== 401 || !token) throw e;
      return refresh().then(function (ok) {
        if (!ok) {
          sessionEnded("Your session has ended: sign in again.");
          throw new ApiError(401, "Your session has ended: sign in again.");
        }
        return request(method, path, body, true);
      });
    });
  }

  function useTokens(res) {
    token = res.token;
    clearTimeout(refreshTimer);
    // Refresh a minute before the access token runs out (or at 80% of a
    // shorter lifetime).
    var life = Number(res.expires) || 600000;
    var wait = Math.max(1000, Math.min(life - 60000, life * 0.8));
    refreshTimer = setTimeout(function () {
      refresh().then(function (ok) {
        if (!ok) sessionEnded("Your session has ended: sign in again.");
      });
    }, wait);
  }

  var refreshing = null;
  function refresh() {
    if (refreshing) return refreshing;
    refreshing = request("POST", "/refresh", {}, false).then(function (res) {
      useTokens(res);
      return true;
    }, function () {
      return false;
    }).then(function (ok) { refreshing = null; return ok; });
    return refreshing;
  }

  function forget() {
    token = null;
    me = null;
    clearTimeout(refreshTimer);
    refreshTimer = null;
  }

  function sessionEnded(notice) {
    forget();
    showSignIn(notice);
  }

  // ---- views -----------------------------------------------------------
  var VIEWS = ["signin", "account", "users", "user", "security"];

  function show(name) {
    $("loading").hidden = true;
    VIEWS.forEach(function (v) { $("view-" + v).hidden = v !== name; });
    var signedIn = name !== "signin";
    $("nav").hidden = !signedIn;
    $("signout").hidden = !signedIn;
    $("who").textContent = signedIn && me ? me.username : "";
    document.querySelectorAll("[data-admin]").forEach(function (a) {
      a.hidden = !(me && me.roles.admin);
    });
    var section = name === "user" ? "users" : name;
    ["account", "users", "security"].forEach(function (s) {
      if (s === section) $("nav-" + s).setAttribute("aria-current", "page");
      else $("nav-" + s).removeAttribute("aria-current");
    });
  }

  function showSignIn(notice) {
    show("signin");
    say("signin-notice", notice);
    say("signin-error", "");
    $("signin-otp-row").hidden = true;
    $("signin-otp").value = "";
    $("signin-password").value = "";
    if (location.hash && location.hash !== "#/signin") history.replaceState(null, "", "#/signin");
    $("signin-username").focus();
  }

  function route() {
    if (!token) return showSignIn("");
    var parts = (location.hash || "#/account").slice(2).split("/");
    var admin = me && me.roles.admin;
    if (parts[0] === "users" && parts[1] && admin) return showUser(decodeURIComponent(parts[1]));
    if (parts[0] === "users" && admin) return showUsers();
    if (parts[0] === "security" && admin) return showSecurity();
    return showAccount();
  }

  function loadMe() {
    return api("GET", "/me").then(function (m) { me = m; return m; });
  }

  function start() {
    // A session cookie from before a reload resumes the session.
    refresh().then(function (ok) {
      if (!ok) return showSignIn("");
      return loadMe().then(route);
    }).catch(function (e) { showSignIn(e.message); });
  }

  // ---- sign in / out -----------------------------------------------------
  $("signin-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("signin-error", "");
    say("signin-notice", "");
    var body = {
      username: $("signin-username").value,
      password: $("signin-password").value,
      mode: "cookie"
    };
    if (!body.username || !body.password) {
      say("signin-error", "Enter your username and password.");
      return;
    }
    var otp = $("signin-otp").value.trim();
    if (!$("signin-otp-row").hidden && otp) body.otp = otp;
    $("signin-submit").disabled = true;
    request("POST", "/login", body, false).then(function (res) {
      useTokens(res);
      return loadMe();
    }).then(function () {
      $("signin-password").value = "";
      $("signin-otp").value = "";
      $("signin-otp-row").hidden = true;
      if (!location.hash || location.hash === "#/signin") history.replaceState(null, "", "#/account");
      route();
    }).catch(function (e) {
      if (e.message === "OTP required") {
        $("signin-otp-row").hidden = false;
        say("signin-error", "Enter the one-time code from your authenticator app.");
        $("signin-otp").focus();
      } else {
        say("signin-error", e.message);
      }
    }).then(function () { $("signin-submit").disabled = false; });
  });

  $("signout").addEventListener("click", function () {
    request("POST", "/logout", {}, true).catch(function () { /* ending anyway */ }).then(function () {
      sessionEnded("You are signed out.");
    });
  });

  $("signout-all").addEventListener("click", function () {
    say("my-sessions-error", "");
    api("POST", "/logout", { all: true }).then(function () {
      // The cookie's session is revoked too; clear the cookie.
      return request("POST", "/logout", {}, false).catch(function () { return null; });
    }).then(function () {
      sessionEnded("You are signed out everywhere.");
    }, function (e) { say("my-sessions-error", e.message); });
  });

  // ---- own account -------------------------------------------------------
  function showAccount() {
    show("account");
    $("account-name").textContent = me.username;
    var list = $("account-roles");
    list.textContent = "";
    ROLES.forEach(function (r) { if (me.roles[r]) list.appendChild(el("li", { text: r })); });
    if (!list.children.length) list.appendChild(el("li", { text: "no roles" }));
    renderMfa();
    loadSessions(null, "my-sessions", "my-sessions-error");
  }

  function renderMfa() {
    say("mfa-state", me.mfa ? "Two-factor authentication is on." : "Two-factor authentication is off.");
    $("mfa-start").hidden = me.mfa || !$("mfa-setup").hidden;
    $("mfa-disable").hidden = !me.mfa;
  }

  $("pw-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("pw-error", "");
    var current = $("pw-current").value, next = $("pw-new").value;
    if (!current || !next) return say("pw-error", "Enter your current and your new password.");
    $("pw-submit").disabled = true;
    api("PATCH", "/user/password/" + encodeURIComponent(me._id), { password: next, currentPassword: current })
      .then(function () {
        $("pw-current").value = "";
        $("pw-new").value = "";
        // A password change ends every session of the user, this one too.
        request("POST", "/logout", {}, false).catch(function () { return null; }).then(function () {
          sessionEnded("Password changed. Every session has ended: sign in with the new password.");
        });
      }, function (e) { say("pw-error", e.message); })
      .then(function () { $("pw-submit").disabled = false; });
  });

  function drawQr(text) {
    var qr = qrcode(0, "M");
    qr.addData(text);
    qr.make();
    var n = qr.getModuleCount(), quiet = 4, canvas = $("mfa-qr");
    var scale = Math.max(2, Math.floor(232 / (n + 2 * quiet)));
    var size = (n + 2 * quiet) * scale;
    canvas.width = size;
    canvas.height = size;
    var g = canvas.getContext("2d");
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, size, size);
    g.fillStyle = "#000000";
    for (var r = 0; r < n; r++) {
      for (var c = 0; c < n; c++) {
        if (qr.isDark(r, c)) g.fillRect((c + quiet) * scale, (r + quiet) * scale, scale, scale);
      }
    }
  }

  $("mfa-start").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("mfa-start-error", "");
    var pw = $("mfa-password").value;
    if (!pw) return say("mfa-start-error", "Enter your password.");
    $("mfa-start-submit").disabled = true;
    api("POST", "/mfa/generate", { password: pw }).then(function (res) {
      $("mfa-password").value = "";
      drawQr(res.otpauthUrl);
      $("mfa-secret").textContent = res.secret;
      $("mfa-setup").hidden = false;
      $("mfa-start").hidden = true;
      $("mfa-code").focus();
    }, function (e) { say("mfa-start-error", e.message); })
      .then(function () { $("mfa-start-submit").disabled = false; });
  });

  $("mfa-enable").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("mfa-enable-error", "");
    var code = $("mfa-code").value.trim();
    if (!code) return say("mfa-enable-error", "Enter the code the app shows.");
    $("mfa-enable-submit").disabled = true;
    api("POST", "/mfa/enable", { otp: code }).then(function (res) {
      $("mfa-code").value = "";
      $("mfa-setup").hidden = true;
      $("mfa-secret").textContent = "";
      $("mfa-codes-text").value = res.recoveryCodes.join("\n");
      $("mfa-codes").hidden = false;
      me.mfa = true;
      renderMfa();
    }, function (e) { say("mfa-enable-error", e.message); })
      .then(function () { $("mfa-enable-submit").disabled = false; });
  });

  $("mfa-copy").addEventListener("click", function () {
    var text = $("mfa-codes-text").value;
    var done = function () { say("mfa-copy-status", "Copied."); };
    var fallback = function () {
      $("mfa-codes-text").select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      say("mfa-copy-status", ok ? "Copied." : "Select the codes and copy them yourself.");
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  });

  $("mfa-disable").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("mfa-disable-error", "");
    var code = $("mfa-disable-code").value.trim();
    if (!code) return say("mfa-disable-error", "Enter a current code or a recovery code.");
    api("POST", "/mfa/disable", { otp: code }).then(function () {
      $("mfa-disable-code").value = "";
      $("mfa-codes").hidden = true;
      me.mfa = false;
      renderMfa();
    }, function (e) { say("mfa-disable-error", e.message); });
  });

  // ---- sessions (own, or a user's for admins) ----------------------------
  function loadSessions(userId, tableId, errorId) {
    say(errorId, "");
    var body = $(tableId).tBodies[0];
    return api("GET", "/sessions" + (userId ? "?userId=" + encodeURIComponent(userId) : "")).then(function (list) {
      body.textContent = "";
      if (!list.length) {
        body.appendChild(el("tr", null, el("td", { colspan: "5", className: "muted", text: "No active sessions." })));
      }
      list.forEach(function (s) {
        var err = el("p", { className: "error", role: "alert" });
        var end = el("button", { type: "button", className: "secondary", text: s.current ? "Sign out" : "End" });
        end.setAttribute("aria-label", (s.current ? "Sign out of this session, signed in " : "End the session signed in ") + when(s.createdAt));
        end.addEventListener("click", function () {
          err.textContent = "";
          end.disabled = true;
          api("DELETE", "/sessions/" + encodeURIComponent(s.id)).then(function () {
            if (s.current) return sessionEnded("You are signed out.");
            loadSessions(userId, tableId, errorId);
          }, function (e) { err.textContent = e.message; end.disabled = false; });
        });
        body.appendChild(el("tr", { "data-session": s.id },
          el("td", null, when(s.createdAt), s.current ? el("strong", { text: " (this one)" }) : null),
          el("td", { text: when(s.lastUsedAt) }),
          el("td", { text: s.address || "unknown" }),
          el("td", { className: "ua", title: s.userAgent || "", text: browser(s.userAgent) }),
          el("td", null, end, err)));
      });
    }, function (e) { say(errorId, e.message); });
  }

  // ---- users (admins) ----------------------------------------------------
  function roleBoxes(fieldsetId, prefix) {
    var fs = $(fieldsetId);
    ROLES.forEach(function (r) {
      var id = prefix + "-" + r;
      var box = el("input", { type: "checkbox", id: id, name: r });
      fs.appendChild(el("label", { className: "check", "for": id }, box, r));
    });
  }

  function readRoles(prefix) {
    var roles = {};
    ROLES.forEach(function (r) { roles[r] = $(prefix + "-" + r).checked; });
    return roles;
  }

  function adminCount() {
    return users.filter(function (u) { return u.roles.admin; }).length;
  }

  function loadUsers() {
    say("users-error", "");
    return api("GET", "/accounts").then(function (list) {
      users = list;
      renderUsers();
    }, function (e) { say("users-error", e.message); });
  }

  function renderUsers() {
    var body = $("users").tBodies[0];
    var filter = $("users-filter").value.trim().toLowerCase();
    body.textContent = "";
    var shown = users.filter(function (u) { return !filter || u.username.toLowerCase().indexOf(filter) >= 0; });
    if (!shown.length) body.appendChild(el("tr", null, el("td", { colspan: "5", className: "muted", text: "No users match." })));
    shown.forEach(function (u) {
      body.appendChild(el("tr", { "data-user": u.username },
        el("th", { scope: "row" }, el("a", { href: "#/users/" + encodeURIComponent(u._id), text: u.username })),
        el("td", { text: rolesText(u.roles) }),
        el("td", { text: u.mfa ? "on" : "off" }),
        el("td", { text: when(u.createdAt) }),
        el("td", { text: when(u.lastLoginAt) })));
    });
  }

  function showUsers() {
    show("users");
    say("create-error", "");
    loadUsers();
  }

  $("users-filter").addEventListener("input", renderUsers);

  $("create-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("create-error", "");
    say("create-status", "");
    var body = { username: $("create-username").value, password: $("create-password").value, roles: readRoles("create") };
    if (!body.username) return say("create-error", "Enter a username.");
    if (body.password.length < 8) return say("create-error", "The password needs at least 8 characters.");
    $("create-submit").disabled = true;
    api("POST", "/user", body).then(function () {
      say("create-status", "Created " + body.username + ".");
      $("create-username").value = "";
      $("create-password").value = "";
      ROLES.forEach(function (r) { $("create-" + r).checked = false; });
      return loadUsers();
    }, function (e) { say("create-error", e.message); })
      .then(function () { $("create-submit").disabled = false; });
  });

  var current = null; // the user shown in view-user

  function showUser(id) {
    show("user");
    ["user-error", "user-roles-error", "user-roles-status", "user-pw-error", "user-pw-status",
      "user-mfa-error", "user-delete-error"].forEach(function (i) { say(i, ""); });
    $("user-delete-confirm").hidden = true;
    api("GET", "/accounts").then(function (list) {
      users = list;
      current = list.filter(function (u) { return u._id === id; })[0] || null;
      if (!current) {
        $("user-title").textContent = "User";
        return say("user-error", "No such user (deleted?).");
      }
      renderUser();
      loadSessions(current._id, "user-sessions", "user-sessions-error");
    }, function (e) { say("user-error", e.message); });
  }

  function renderUser() {
    var u = current;
    $("user-title").textContent = u.username;
    ROLES.forEach(function (r) { $("user-role-" + r).checked = !!u.roles[r]; });
    var lastAdmin = u.roles.admin && adminCount() <= 1;
    $("user-role-admin").disabled = lastAdmin;
    say("user-roles-reason", lastAdmin ? "The admin role cannot be taken from the last admin." : "");
    $("user-delete").disabled = lastAdmin;
    say("user-delete-reason", lastAdmin ? "The last admin cannot be deleted." : "");
    say("user-mfa-state", u.mfa ? "On." : "Off.");
    $("user-mfa-reset").disabled = !u.mfa;
  }

  $("user-roles-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("user-roles-error", "");
    say("user-roles-status", "");
    var roles = readRoles("user-role");
    $("user-roles-submit").disabled = true;
    api("PATCH", "/user/roles/" + encodeURIComponent(current._id), { roles: roles }).then(function (res) {
      current.roles = res.roles;
      say("user-roles-status", "Roles saved: " + rolesText(res.roles) + ". The user's sessions have ended.");
      if (current._id === me._id) return sessionEnded("Your roles changed: sign in again.");
      renderUser();
      loadSessions(current._id, "user-sessions", "user-sessions-error");
    }, function (e) { say("user-roles-error", e.message); })
      .then(function () { $("user-roles-submit").disabled = false; });
  });

  $("user-pw-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    say("user-pw-error", "");
    say("user-pw-status", "");
    var pw = $("user-pw").value;
    if (pw.length < 8) return say("user-pw-error", "The password needs at least 8 characters.");
    api("PATCH", "/user/password/" + encodeURIComponent(current._id), { password: pw }).then(function () {
      $("user-pw").value = "";
      say("user-pw-status", "Password set. The user's sessions have ended.");
      if (current._id === me._id) return sessionEnded("Your password changed: sign in again.");
      loadSessions(current._id, "user-sessions", "user-sessions-error");
    }, function (e) { say("user-pw-error", e.message); });
  });

  $("user-mfa-reset").addEventListener("click", function () {
    say("user-mfa-error", "");
    api("DELETE", "/user/mfa/" + encodeURIComponent(current._id)).then(function () {
      current.mfa = false;
      renderUser();
      say("user-mfa-state", "Off (reset; the user's sessions have ended).");
    }, function (e) { say("user-mfa-error", e.message); });
  });

  $("user-end-all").addEventListener("click", function () {
    say("user-sessions-error", "");
    api("POST", "/user/logout/" + encodeURIComponent(current._id)).then(function () {
      if (current._id === me._id) return sessionEnded("You are signed out everywhere.");
      loadSessions(current._id, "user-sessions", "user-sessions-error");
    }, function (e) { say("user-sessions-error", e.message); });
  });

  $("user-delete").addEventListener("click", function () {
    say("user-delete-error", "");
    say("user-delete-question", "Delete the user \u201c" + current.username + "\u201d? This cannot be undone.");
    $("user-delete-yes").textContent = "Delete " + current.username;
    $("user-delete-confirm").hidden = false;
    $("user-delete-no").focus();
  });

  $("user-delete-no").addEventListener("click", function () {
    $("user-delete-confirm").hidden = true;
    $("user-delete").focus();
  });

  $("user-delete-yes").addEventListener("click", function () {
    var gone = current;
    api("DELETE", "/user/" + encodeURIComponent(gone._id)).then(function () {
      $("user-delete-confirm").hidden = true;
      if (gone._id === me._id) return sessionEnded("Your account was deleted.");
      location.hash = "#/users";
      say("create-status", "Deleted " + gone.username + ".");
    }, function (e) { say("user-delete-error", e.message); });
  });

  // ---- security (admins) -------------------------------------------------
  function showSecurity() {
    show("security");
    loadKeys();
    loadAudit();
  }

  function loadKeys() {
    say("keys-error", "");
    return api("GET", "/keys").then(function (keys) {
      var body = $("keys").tBodies[0];
      body.textContent = "";
      keys.forEach(function (k) {
        body.appendChild(el("tr", null,
          el("td", null, el("code", { text: k.kid })),
          el("td", { text: k.state }),
          el("td", { title: when(k.createdAt), text: age(k.createdAt) })));
      });
    }, function (e) { say("keys-error", e.message); });
  }

  $("keys-rotate").addEventListener("click", function () {
    say("keys-error", "");
    say("keys-status", "");
    $("keys-rotate").disabled = true;
    api("POST", "/keys/rotate", { revokePrevious: false }).then(function (res) {
      say("keys-status", "New signing key " + res.kid + ".");
      return loadKeys();
    }, function (e) { say("keys-error", e.message); })
      .then(function () { $("keys-rotate").disabled = false; });
  });

  function loadAudit() {
    say("audit-error", "");
    var q = "?limit=200";
    var ev = $("audit-event").value, user = $("audit-user").value.trim();
    if (ev) q += "&event=" + encodeURIComponent(ev);
    if (user) q += "&user=" + encodeURIComponent(user);
    return api("GET", "/audit" + q).then(function (list) {
      var body = $("audit").tBodies[0];
      body.textContent = "";
      if (!list.length) body.appendChild(el("tr", null, el("td", { colspan: "5", className: "muted", text: "No events match." })));
      list.forEach(function (a) {
        body.appendChild(el("tr", { "data-event": a.event },
          el("td", { text: when(a.time) }),
          el("td", { text: a.event }),
          el("td", { text: a.username || "" }),
          el("td", { text: a.by || "" }),
          el("td", { text: a.address || "" })));
      });
    }, function (e) { say("audit-error", e.message); });
  }

  $("audit-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    loadAudit();
  });

  // ---- start -------------------------------------------------------------
  roleBoxes("create-roles", "create");
  roleBoxes("user-roles", "user-role");
  EVENTS.forEach(function (e) { $("audit-event").appendChild(el("option", { value: e, text: e })); });
  window.addEventListener("hashchange", function () { if (token) route(); });
  // The link of the page already shown loads it again (fresh lists).
  document.querySelectorAll("#nav a").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      if (a.getAttribute("href") === location.hash) {
        ev.preventDefault();
        if (token) route();
      }
    });
  });
  start();
})();
