// Node-RED's adminAuth backed by engine-auth: every admin API request's
// bearer token is checked by engine-auth (GET /api/v1/auth/verify) and its
// role flags become Node-RED permissions:
//   flows -> "*" (everything), else read -> "read" (read-only), else no access.
// Nothing is cached: Node-RED calls tokens() for every request, so a revoked
// token, a deleted user or a removed flag is refused at the next request.
// Fails closed: any answer but 200, an error or a timeout means no access.
// Node's built-ins only (no npm package).
//
//   const engineAuth = require("./engine-auth-admin-auth");
//   module.exports = { adminAuth: engineAuth({ url: "http://127.0.0.1:8443" }) };
//
// Options: url (engine-auth, default http://127.0.0.1:8443), timeout (ms,
// default 3000), ca (PEM of engine-auth's certificate, for an https url with a
// self-signed one).
"use strict";

const http = require("http");
const https = require("https");

// Node-RED's permissions for engine-auth's role flags.
function permissionsOf(roles) {
  const flags = roles.split(",").map((f) => f.trim());
  if (flags.includes("flows")) return "*";
  if (flags.includes("read")) return "read";
  return null;
}

// Resolves {username, permissions} for a token engine-auth accepts, or null.
function verify(target, token, timeout, ca) {
  return new Promise((resolve) => {
    let req;
    try {
      const client = target.protocol === "https:" ? https : http;
      req = client.request(target, {
        method: "GET",
        headers: { Authorization: "Bearer " + token },
        timeout,
        ca,
        agent: false,
      });
    } catch (e) {
      // A token that cannot be a header value, a bad URL, ...
      return resolve(null);
    }
    req.on("timeout", () => req.destroy(new Error("engine-auth: timed out")));
    req.on("error", () => resolve(null));
    req.on("response", (res) => {
      res.resume();
      const user = res.headers["x-auth-user"];
      const roles = res.headers["x-auth-roles"];
      if (res.statusCode !== 200 || typeof user !== "string" || typeof roles !== "string") {
        return resolve(null);
      }
      const permissions = permissionsOf(roles);
      if (!permissions) return resolve(null);
      // Header values arrive as latin1; the username is UTF-8.
      const username = Buffer.from(user, "latin1").toString("utf8");
      resolve({ username, permissions });
    });
    req.end();
  });
}

module.exports = function engineAuthAdminAuth(options) {
  const opts = options || {};
  const base = (opts.url || "http://127.0.0.1:8443").replace(/\/+$/, "");
  const target = new URL(base + "/api/v1/auth/verify");
  const timeout = opts.timeout || 3000;
  return {
    // No `type` and no `users`: Node-RED takes the user tokens() resolves as
    // is (it never looks it up with users()), and without `type` it offers no
    // password login of its own (no POST /auth/token).
    tokens: function (token) {
      if (typeof token !== "string" || token === "") return Promise.resolve(null);
      return verify(target, token, timeout, opts.ca);
    },
  };
};

module.exports.permissionsOf = permissionsOf;
