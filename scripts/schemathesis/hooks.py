"""Schemathesis hooks for scripts/schemathesis.sh: a fresh admin bearer
token for the fuzzed requests.

The fuzzer may revoke the token it is given (`POST /logout {"all": true}`
is a valid body, and so is a roles change on the admin's own id), so the
token is fetched by logging in again every few seconds rather than once.
The login comes from 127.0.0.2: the fuzzer's own failed logins from
127.0.0.1 get that address throttled (429), which must not lock the
administrator out, and does not.
"""

import http.client
import json
import os

import schemathesis

PORT = int(os.environ["ENGINE_AUTH_FUZZ_PORT"])
PASSWORD = os.environ["ENGINE_AUTH_FUZZ_ADMIN_PASSWORD"]


def login() -> str:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=("127.0.0.2", 0))
    try:
        body = json.dumps({"username": "admin", "password": PASSWORD})
        conn.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"admin login from 127.0.0.2 failed: {resp.status} {data[:200]!r}")
        return json.loads(data)["token"]
    finally:
        conn.close()


@schemathesis.auth(refresh_interval=2, retry_on=[])
class AdminToken:
    def get(self, case, ctx):
        return login()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
