"""A service verifying engine-auth's tokens the way PyJWT's documentation
shows: PyJWKClient fetches the JWKS (kept for MAX_AGE seconds) and picks the
key by the token's kid; jwt.decode checks the signature and exp.

Usage: pyjwt_verifier.py JWKS_URL MAX_AGE ALG (the one algorithm it
accepts: EdDSA or ES256, as a service is configured). Reads commands on stdin, one a
line, and answers each with one line:
  verify TOKEN  ->  ok <_id claim>  |  refused <exception name>
  fresh         ->  fresh   (a new client, as a restarted service has)
"""

import sys

import jwt

URL, MAX_AGE, ALG = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def client():
    return jwt.PyJWKClient(URL, cache_jwk_set=True, lifespan=MAX_AGE, cache_keys=False)


verifier = client()
print("ready", jwt.__version__, flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "fresh":
        verifier = client()
        print("fresh", flush=True)
        continue
    try:
        key = verifier.get_signing_key_from_jwt(arg)
        claims = jwt.decode(arg, key.key, algorithms=[ALG], options={"require": ["exp", "iat"]})
        print("ok", claims["_id"], flush=True)
    except Exception as e:  # every refusal is an answer
        print("refused", type(e).__name__, flush=True)
