// node-oidc-provider configured like idp, for the side-by-side benchmark (bench/compare.py).
//
//   PEER_SECRETS='{"bench-cc":"…","bench-rp":"…","bench-rs":"…"}' node server.mjs PORT
//
// Listens on 127.0.0.1:PORT only and prints "ready <url>" once it does. Everything lives
// in the provider's default in-memory adapter (a 1,000-entry LRU, development only).
//
// What is equivalent to idp (bench/compare.py registers the same clients there):
// - bench-cc: confidential (client_secret_basic), client_credentials, scope api:read; its
//   tokens are RFC 9068 JWTs signed ES256 for the resource server API (resourceIndicators
//   with accessTokenFormat 'jwt'; defaultResource picks API when none is requested).
// - bench-rp: confidential, authorization_code + refresh_token, openid offline_access
//   api:read; ID tokens RS256; every refresh rotates (rotateRefreshToken: true). A refresh
//   with resource=API returns a JWT access token (ES256) like idp's; without it, the
//   access token is opaque (for userinfo), which is what introspection is measured on,
//   since node-oidc-provider refuses to introspect structured (JWT) tokens.
// - bench-rs: confidential, the resource server that calls introspection.
// - signing keys: one ES256 (P-256) and one RS256 (2048-bit) key, generated at start.
// - lifetimes as idp's defaults: access/ID/client_credentials 5 min, code 60 s,
//   refresh 14 days.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';
const API = 'urn:idp-bench:api';
const REDIRECT_URI = 'http://127.0.0.1/cb';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs PORT (with PEER_SECRETS in the environment)');
  process.exit(2);
}
const secrets = JSON.parse(process.env.PEER_SECRETS ?? '{}');
for (const id of ['bench-cc', 'bench-rp', 'bench-rs']) {
  if (typeof secrets[id] !== 'string' || secrets[id].length < 16) {
    console.error(`PEER_SECRETS must give ${id} a secret of at least 16 characters`);
    process.exit(2);
  }
}

function signingKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    alg,
    use: 'sig',
    kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`,
  };
}

const apiServer = {
  scope: 'api:read',
  audience: API,
  accessTokenTTL: 300,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'ES256' } },
};

const configuration = {
  clients: [
    {
      client_id: 'bench-cc',
      client_secret: secrets['bench-cc'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api:read',
    },
    {
      client_id: 'bench-rp',
      client_secret: secrets['bench-rp'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      scope: 'openid offline_access api:read',
      id_token_signed_response_alg: 'RS256',
    },
    {
      client_id: 'bench-rs',
      client_secret: secrets['bench-rs'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys: [signingKey('ES256'), signingKey('RS256')] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', 'api:read'],
  claims: { openid: ['sub'] },
  async findAccount(_ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 300,
    ClientCredentials: 300,
    IdToken: 300,
    AuthorizationCode: 60,
    RefreshToken: 14 * 24 * 3600,
    Grant: 90 * 24 * 3600,
    Session: 14 * 24 * 3600,
    Interaction: 3600,
  },
  features: {
    devInteractions: { enabled: true }, // the harness logs in through these pages
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Like idp: any confidential client may introspect access tokens.
      async allowedPolicy(_ctx, client) { return client.clientAuthMethod !== 'none'; },
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async defaultResource(ctx, _client, oneOf) {
        if (oneOf) return oneOf;
        return ctx.oidc.params?.grant_type === 'client_credentials' ? API : undefined;
      },
      async useGrantedResource() { return false; },
      async getResourceServerInfo(_ctx, indicator) {
        if (indicator === API) return apiServer;
        throw new errors.InvalidTarget();
      },
    },
  },
};

const provider = new Provider(`http://${HOST}:${port}`, configuration);
const server = createServer(provider.callback());
server.keepAliveTimeout = 5000; // as deploy/gunicorn.conf.py's keepalive
server.listen(port, HOST, () => console.log(`ready http://${HOST}:${port}`));

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
