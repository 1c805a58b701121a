// A service verifying engine-auth's tokens the way jose's documentation
// shows: createRemoteJWKSet fetches the JWKS and jwtVerify checks the
// signature and exp. The set is kept for MAX_AGE seconds, and a token with
// an unknown kid does not make it fetch again sooner (cooldownDuration =
// cacheMaxAge): it succeeds only if the daemon published the key before it
// signed with it.
//
// Usage: node jose_verifier.mjs JWKS_URL MAX_AGE ALG (the one algorithm it
// accepts: EdDSA or ES256, as a service is configured). Commands on stdin, one a
// line, each answered with one line:
//   verify TOKEN  ->  ok <_id claim>  |  refused <error code>
//   fresh         ->  fresh   (a new key set, as a restarted service has)
import { createRemoteJWKSet, jwtVerify } from 'jose';
import readline from 'node:readline';

const [url, maxAge, alg] = process.argv.slice(2);
const ms = Number(maxAge) * 1000;
const make = () => createRemoteJWKSet(new URL(url), { cacheMaxAge: ms, cooldownDuration: ms });
let jwks = make();
console.log('ready');
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'fresh') {
    jwks = make();
    console.log('fresh');
    continue;
  }
  try {
    const { payload } = await jwtVerify(arg, jwks, { algorithms: [alg], requiredClaims: ['exp', 'iat'] });
    console.log('ok', payload._id);
  } catch (e) {
    console.log('refused', e.code || e.name);
  }
}
