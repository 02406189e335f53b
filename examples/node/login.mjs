#!/usr/bin/env node
// Signs a user in to idp with oauth4webapi, an OAuth 2.0 / OpenID Connect client library
// written independently of idp: discovery, the authorization code flow with PKCE S256 and a
// nonce, RFC 9207 `iss` checking, ID token validation, RFC 9068 access token validation
// against the JWKS, and userinfo. The script itself plays the browser (fetch with manual
// redirects and a tiny cookie jar), filling idp's login form and, if asked, its consent form.
//
// Prints one JSON line: {"id_token_claims", "access_token_claims", "userinfo", "refreshed",
// "browser", "token"}: "refreshed" (only when the scope has offline_access and a refresh
// token came back) is the result of one refresh, "browser" lists the requests the browser
// made ("GET /login 200", ...).
//
//   node login.mjs --issuer http://127.0.0.1:5000 --client-id demo-app \
//       --client-secret SECRET --redirect-uri http://127.0.0.1:5001/callback \
//       --username alice --password 'correct horse battery'
//
// With --dpop the tokens are bound to a key the script generates (RFC 9449): proofs on the
// token, refresh and userinfo requests, dpop_jkt on the authorization request, nonces
// retried when idp asks for one, and the access token checked with the proof it was sent
// with.
//
// With --resource URL it also calls that API with the access token (and its DPoP proof),
// then once more with the token alone, as a thief without the key would.
//
// With --par the authorization request is pushed (RFC 9126) and the browser carries only
// its request_uri; with --jar it is a request object signed with the client's key (RFC
// 9101), pushed or sent by value. IDP_CLIENT_AUTH=private_key_jwt signs the client's
// assertions (RFC 7523) with the private JWK in IDP_CLIENT_JWK, which --jar uses too.
//
// Every option can also come from the environment: IDP_ISSUER, IDP_CLIENT_ID,
// IDP_CLIENT_SECRET (absent for a public client), IDP_CLIENT_AUTH (basic | post | none),
// IDP_REDIRECT_URI, IDP_USERNAME, IDP_PASSWORD, IDP_SCOPE, IDP_MAX_AGE, IDP_DPOP=1. Prefer
// the environment for secrets: argv is visible to other local users.

import { parseArgs } from 'node:util'
import * as oauth from 'oauth4webapi'

const TIMEOUT_MS = 10_000
const MAX_BROWSER_STEPS = 10

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'client-auth': { type: 'string' },
    'redirect-uri': { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    scope: { type: 'string' },
    'max-age': { type: 'string' },
    dpop: { type: 'boolean' },
    par: { type: 'boolean' },
    jar: { type: 'boolean' },
    resource: { type: 'string' },
  },
})

const env = process.env
const config = {
  issuer: args.issuer ?? env.IDP_ISSUER,
  clientId: args['client-id'] ?? env.IDP_CLIENT_ID,
  clientSecret: args['client-secret'] ?? env.IDP_CLIENT_SECRET ?? '',
  clientAuth: args['client-auth'] ?? env.IDP_CLIENT_AUTH ?? '',
  redirectUri: args['redirect-uri'] ?? env.IDP_REDIRECT_URI,
  username: args.username ?? env.IDP_USERNAME,
  password: args.password ?? env.IDP_PASSWORD,
  scope: args.scope ?? env.IDP_SCOPE ?? 'openid profile email',
  maxAge: args['max-age'] ?? env.IDP_MAX_AGE ?? '',
  dpop: args.dpop ?? env.IDP_DPOP === '1',
  par: args.par ?? false,
  jar: args.jar ?? false,
  clientJwk: env.IDP_CLIENT_JWK ?? '',
  resource: args.resource ?? '',
}

for (const name of ['issuer', 'clientId', 'redirectUri', 'username', 'password']) {
  if (!config[name]) fail(`missing ${name} (see the comment at the top of login.mjs)`)
}

function fail(message, cause) {
  const detail = { error: message }
  if (cause !== undefined) detail.cause = describe(cause)
  process.stderr.write(JSON.stringify(detail) + '\n')
  process.exit(1)
}

function describe(err) {
  if (!(err instanceof Error)) return err
  const out = { name: err.name, message: err.message }
  for (const key of ['code', 'error', 'error_description', 'status']) {
    if (err[key] !== undefined) out[key] = err[key]
  }
  if (err.cause !== undefined && !(err.cause instanceof Response)) {
    try {
      out.cause = JSON.parse(JSON.stringify(err.cause, (k, v) => (v instanceof Headers ? Object.fromEntries(v) : v)))
    } catch {
      out.cause = String(err.cause)
    }
  }
  return out
}

// The test server speaks plain http on 127.0.0.1; oauth4webapi insists on https unless told.
const issuer = new URL(config.issuer)
const insecure = issuer.protocol === 'http:'
// The headers of every request oauth4webapi sent, by URL (the DPoP proof among them).
const sent = new Map()
function httpOptions(extra = {}) {
  return {
    signal: AbortSignal.timeout(TIMEOUT_MS),
    ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
    [oauth.customFetch]: (url, init) => {
      sent.set(String(url), new Headers(init.headers))
      return fetch(url, init)
    },
    ...extra,
  }
}

// RFC 9449 §8: when idp asks for a DPoP nonce, the handle has kept it; ask once more.
async function retryingNonce(call) {
  try {
    return await call()
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    return await call()
  }
}

// --- the "browser": fetch with manual redirects and a cookie jar -----------------------------

const jar = new Map()
const steps = [] // "METHOD /path STATUS" of every request the browser made, for the curious


function storeCookies(response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';')
    const eq = pair.indexOf('=')
    if (eq < 1) continue
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    const expired = attributes.some((a) => {
      const [k, v = ''] = a.split('=').map((s) => s.trim())
      if (k.toLowerCase() === 'max-age') return Number(v) <= 0
      if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now()
      return false
    })
    if (expired) jar.delete(name)
    else jar.set(name, value)
  }
}

async function browse(url, init = {}) {
  const headers = new Headers(init.headers)
  headers.set('accept', 'text/html')
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '))
  const response = await fetch(url, {
    ...init,
    headers,
    redirect: 'manual',
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })
  storeCookies(response)
  steps.push(`${init.method ?? 'GET'} ${new URL(url).pathname} ${response.status}`)
  return response
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }
function unescapeHtml(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
      return String.fromCodePoint(code)
    }
    return ENTITIES[ref.toLowerCase()] ?? whole
  })
}

function attribute(tag, name) {
  const match = tag.match(new RegExp(`\\s${name}="([^"]*)"`, 'i'))
  return match ? unescapeHtml(match[1]) : undefined
}

// The first POST form of a page: its action, hidden fields and field/button names.
function parseForm(html) {
  const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i)
  if (!form || (attribute(form[1], 'method') ?? 'get').toLowerCase() !== 'post') return null
  const hidden = new URLSearchParams()
  const names = new Set()
  const buttons = new Map()
  for (const [tag] of form[2].matchAll(/<(?:input|button)\b[^>]*>/gi)) {
    const name = attribute(tag, 'name')
    if (!name) continue
    names.add(name)
    if (/^<input/i.test(tag) && attribute(tag, 'type')?.toLowerCase() === 'hidden') {
      hidden.append(name, attribute(tag, 'value') ?? '')
    }
    if (/^<button/i.test(tag)) buttons.set(attribute(tag, 'value'), name)
  }
  return { action: attribute(form[1], 'action') ?? '', hidden, names, buttons }
}

function isRedirectUri(location) {
  const target = new URL(location)
  const expected = new URL(config.redirectUri)
  return target.origin === expected.origin && target.pathname === expected.pathname
}

// Follows idp from the authorization URL to the redirect back to the client, signing in
// (and allowing access) on the way. Returns the callback URL without requesting it.
async function signIn(authorizationUrl) {
  let url = authorizationUrl
  let response = await browse(url)
  for (let step = 0; step < MAX_BROWSER_STEPS; step++) {
    if ([301, 302, 303, 307, 308].includes(response.status)) {
      const location = new URL(response.headers.get('location'), url)
      if (isRedirectUri(location)) return location
      url = location
      response = await browse(url)
      continue
    }
    const html = await response.text()
    if (response.status !== 200) fail(`idp answered ${url.pathname} with HTTP ${response.status}`, html.slice(0, 500))
    const form = parseForm(html)
    if (!form) fail(`no form on ${url.pathname}`, html.slice(0, 500))
    const body = new URLSearchParams(form.hidden)
    if (form.names.has('password')) {
      body.set('username', config.username)
      body.set('password', config.password)
    } else if (form.buttons.get('allow') === 'decision') {
      body.set('decision', 'allow')
    } else {
      fail(`unexpected form on ${url.pathname}`, html.slice(0, 500))
    }
    url = new URL(form.action || url.href, url)
    response = await browse(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    })
    if (response.status === 401) fail('login refused: wrong username or password')
  }
  fail(`no redirect back to ${config.redirectUri} after ${MAX_BROWSER_STEPS} steps`)
}

// --- the relying party -------------------------------------------------------------------

// The client's own signing key (private_key_jwt, request objects), from IDP_CLIENT_JWK.
let importedKey
async function clientKey() {
  if (!config.clientJwk) fail('IDP_CLIENT_JWK (a private JWK) is needed for private_key_jwt and --jar')
  if (!importedKey) {
    const jwk = JSON.parse(config.clientJwk)
    const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: jwk.crv }, false, ['sign'])
    importedKey = { key, kid: jwk.kid ?? (await thumbprint(jwk)) }
  }
  return importedKey
}

// RFC 7638: the SHA-256 thumbprint of an EC key, the kid examples/client_jwt.py uses.
async function thumbprint(jwk) {
  const members = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(members))
  return Buffer.from(digest).toString('base64url')
}

// The API at --resource, with the token as its client holds it, then as a bare token.
async function callResource(accessToken, dpopOptions) {
  const url = new URL(config.resource)
  const withKey = await retryingNonce(async () => oauth.protectedResourceRequest(
    accessToken, 'GET', url, new Headers(), null, httpOptions(dpopOptions),
  ))
  const bare = await fetch(url, {
    headers: { authorization: `Bearer ${accessToken}` },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })
  return {
    with_key: { status: withKey.status, body: await withKey.json().catch(() => null) },
    without_key: { status: bare.status, www_authenticate: bare.headers.get('www-authenticate') },
  }
}

async function main() {
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, httpOptions()),
  )

  const client = { client_id: config.clientId }
  let clientAuth
  const method = config.clientAuth || (config.clientSecret ? 'basic' : 'none')
  switch (method) {
    case 'basic':
      clientAuth = oauth.ClientSecretBasic(config.clientSecret)
      break
    case 'post':
      clientAuth = oauth.ClientSecretPost(config.clientSecret)
      break
    case 'none':
      clientAuth = oauth.None()
      break
    case 'private_key_jwt':
      clientAuth = oauth.PrivateKeyJwt(await clientKey())
      break
    default:
      fail(`unknown client authentication ${method} (basic, post or none)`)
  }

  const DPoP = config.dpop ? oauth.DPoP(client, await oauth.generateKeyPair('ES256')) : undefined
  const dpopOptions = DPoP ? { DPoP } : {}

  const codeVerifier = oauth.generateRandomCodeVerifier()
  const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier)
  const state = oauth.generateRandomState()
  const nonce = oauth.generateRandomNonce()
  const maxAge = config.maxAge === '' ? undefined : Number(config.maxAge)

  const authorizationUrl = new URL(as.authorization_endpoint)
  const params = authorizationUrl.searchParams
  params.set('response_type', 'code')
  params.set('client_id', client.client_id)
  params.set('redirect_uri', config.redirectUri)
  params.set('scope', config.scope)
  params.set('state', state)
  params.set('nonce', nonce)
  params.set('code_challenge', codeChallenge)
  params.set('code_challenge_method', 'S256')
  if (maxAge !== undefined) params.set('max_age', String(maxAge))
  if (DPoP) params.set('dpop_jkt', await DPoP.calculateThumbprint())

  if (config.jar) {
    // RFC 9101: the parameters go inside a JWT signed with the client's key.
    const requestObject = await oauth.issueRequestObject(as, client, params, await clientKey())
    for (const name of [...params.keys()]) params.delete(name)
    params.set('client_id', client.client_id)
    params.set('request', requestObject)
  }
  if (config.par) {
    // RFC 9126: the request goes to idp directly; the browser gets only its request_uri.
    const pushed = await retryingNonce(async () => oauth.processPushedAuthorizationResponse(
      as, client,
      await oauth.pushedAuthorizationRequest(as, client, clientAuth, params, httpOptions(dpopOptions)),
    ))
    for (const name of [...params.keys()]) params.delete(name)
    params.set('client_id', client.client_id)
    params.set('request_uri', pushed.request_uri)
  }

  const callback = await signIn(authorizationUrl)

  // Checks state, and iss against the discovered issuer (RFC 9207), and turns an error
  // response into an AuthorizationResponseError.
  const callbackParams = oauth.validateAuthResponse(as, client, callback, state)

  // Validates the ID token's iss, aud, azp, exp, iat, nonce (and auth_time with max_age);
  // with DPoP, that the token type is DPoP.
  const result = await retryingNonce(async () => oauth.processAuthorizationCodeResponse(
    as, client,
    await oauth.authorizationCodeGrantRequest(
      as, client, clientAuth, callbackParams, config.redirectUri, codeVerifier,
      httpOptions(dpopOptions),
    ),
    { expectedNonce: nonce, requireIdToken: true, ...(maxAge !== undefined ? { maxAge } : {}) },
  ))
  const idTokenClaims = oauth.getValidatedIdTokenClaims(result)

  const userinfo = await retryingNonce(async () => oauth.processUserInfoResponse(
    as, client, idTokenClaims.sub,
    await oauth.userInfoRequest(as, client, result.access_token, httpOptions(dpopOptions)),
  ))

  // RFC 9068: typ at+jwt, signature against jwks_uri, iss, aud, exp and required claims;
  // for a DPoP-bound token also the proof the userinfo request carried (RFC 9449 §7:
  // signature, htm, htu, ath, and its key against cnf.jkt).
  const userinfoHeaders = sent.get(as.userinfo_endpoint) ?? new Headers()
  const accessTokenClaims = await oauth.validateJwtAccessToken(
    as,
    new Request(as.userinfo_endpoint, {
      headers: DPoP
        ? { authorization: `DPoP ${result.access_token}`, dpop: userinfoHeaders.get('dpop') }
        : { authorization: `Bearer ${result.access_token}` },
    }),
    client.client_id,
    httpOptions(DPoP ? { requireDPoP: true } : {}),
  )

  // With offline_access: one refresh, which must rotate the refresh token and keep the
  // ID token's subject and authentication time (OIDC Core §12.2).
  let refreshed
  if (result.refresh_token) {
    const next = await retryingNonce(async () => oauth.processRefreshTokenResponse(
      as, client,
      await oauth.refreshTokenGrantRequest(
        as, client, clientAuth, result.refresh_token, httpOptions(dpopOptions),
      ),
    ))
    const claims = oauth.getValidatedIdTokenClaims(next)
    if (claims && (claims.sub !== idTokenClaims.sub || claims.auth_time !== idTokenClaims.auth_time)) {
      fail('the refreshed ID token changed sub or auth_time (OIDC Core 12.2)', { before: idTokenClaims, after: claims })
    }
    refreshed = {
      id_token_claims: claims,
      scope: next.scope,
      rotated: Boolean(next.refresh_token) && next.refresh_token !== result.refresh_token,
      token_type: next.token_type,
    }
  }

  const resource = config.resource ? await callResource(result.access_token, dpopOptions) : undefined

  process.stdout.write(JSON.stringify({
    resource,
    id_token_claims: idTokenClaims,
    access_token_claims: accessTokenClaims,
    userinfo,
    refreshed,
    browser: steps,
    token: {
      token_type: result.token_type,
      expires_in: result.expires_in,
      scope: result.scope,
      access_token: result.access_token,
      id_token: result.id_token,
      refresh_token: result.refresh_token,
    },
  }) + '\n')
}

main().catch((err) => fail('sign-in failed', err))
