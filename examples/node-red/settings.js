// A minimal Node-RED settings file whose editor and admin API only
// engine-auth's users reach (node-red --settings settings.js). The module
// sits beside this file; copy both into Node-RED's user directory.
// This very file is what tests/it/frontdoor/node_red.rs runs (with its own ports).
const engineAuth = require("./engine-auth-admin-auth");

module.exports = {
    uiPort: 1880,
    uiHost: "127.0.0.1",
    flowFile: "flows.json",
    // Each request's "Authorization: Bearer <engine-auth access token>" is
    // checked by engine-auth: flows -> full access, read -> read-only.
    adminAuth: engineAuth({ url: "http://127.0.0.1:8443" }),
};
