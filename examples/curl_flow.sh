#!/usr/bin/env bash
# The authorization code flow with PKCE, a refresh-token rotation and a replay, with curl
# alone. Usage (after `make run`, in another terminal):
#
#   examples/curl_flow.sh                       # uses the demo client and demo user
#   CREDS=path/to/client.json examples/curl_flow.sh   # another {"client_id", "client_secret"}
#   IDP=http://127.0.0.1:5000 CLIENT_ID=demo-app CLIENT_SECRET=... REDIRECT_URI=... \
#   USERNAME=admin PASSWORD=demo-password examples/curl_flow.sh
set -euo pipefail
# The repo is found from this script, so it runs from any directory (`make run` writes
# instance/ at the top of the repo).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IDP=${IDP:-http://127.0.0.1:5000}
CREDS=${CREDS:-$ROOT/instance/demo_client.json}
cred() {
  [ -r "$CREDS" ] || { echo "no $CREDS: start \`make run\` first, or set CREDS or CLIENT_ID and CLIENT_SECRET" >&2; exit 1; }
  python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$CREDS" "$1"
}
CLIENT_ID=${CLIENT_ID:-$(cred client_id)}
CLIENT_SECRET=${CLIENT_SECRET:-$(cred client_secret)}
REDIRECT_URI=${REDIRECT_URI:-http://127.0.0.1:5001/callback}
USERNAME=${USERNAME:-admin}
PASSWORD=${PASSWORD:-demo-password}
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
field() { python3 -c "import json,sys;print(json.load(sys.stdin).get('$1',''))"; }

step "1. PKCE verifier and challenge (RFC 7636, S256)"
verifier=$(python3 -c "import secrets;print(secrets.token_urlsafe(48))")
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
echo "verifier=$verifier"

step "2. The browser opens /authorize and is sent to the login page"
authz="$IDP/authorize?response_type=code&client_id=$CLIENT_ID&scope=openid%20profile%20email%20offline_access&state=xyz&nonce=n1&code_challenge=$challenge&code_challenge_method=S256&redirect_uri=$(python3 -c "import urllib.parse,sys;print(urllib.parse.quote(sys.argv[1],safe=''))" "$REDIRECT_URI")"
login=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$authz")
echo "$login"

step "3. Log in (the form carries a CSRF token)"
csrf=$(curl -s -c "$jar" -b "$jar" "$login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
next=$(python3 -c "import urllib.parse,sys;print(urllib.parse.parse_qs(urllib.parse.urlsplit(sys.argv[1]).query)['next'][0])" "$login")
back=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' \
  --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
  --data-urlencode "csrf_token=$csrf" --data-urlencode "next=$next" "$IDP/login")
echo "303 -> $back"

step "4. Back at /authorize: redirected to the client with code, state and iss (RFC 9207)"
callback=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$back")
echo "$callback"
code=$(python3 -c "import urllib.parse,sys;print(urllib.parse.parse_qs(urllib.parse.urlsplit(sys.argv[1]).query)['code'][0])" "$callback")

step "5. Exchange the code at /token"
tokens=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code \
  -d "code=$code" --data-urlencode "redirect_uri=$REDIRECT_URI" -d "code_verifier=$verifier" "$IDP/token")
echo "$tokens" | python3 -m json.tool
access=$(echo "$tokens" | field access_token); rt1=$(echo "$tokens" | field refresh_token)

step "6. /userinfo with the access token"
curl -s -H "Authorization: Bearer $access" "$IDP/userinfo"; echo

step "7. Refresh twice: each use returns a new refresh token (rotation)"
rt2=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=refresh_token -d "refresh_token=$rt1" "$IDP/token" | field refresh_token)
r3=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=refresh_token -d "refresh_token=$rt2" "$IDP/token")
rt3=$(echo "$r3" | field refresh_token); access3=$(echo "$r3" | field access_token)
echo "rt1=${rt1:0:12}…  rt2=${rt2:0:12}…  rt3=${rt3:0:12}…"
printf 'introspect rt3: '; curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d "token=$rt3" "$IDP/introspect"; echo

step "8. Replay the old rt1 (what a thief would do): invalid_grant, and the whole chain dies"
curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=refresh_token -d "refresh_token=$rt1" "$IDP/token"; echo
printf 'introspect rt3:     '; curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d "token=$rt3" "$IDP/introspect"; echo
printf 'introspect access3: '; curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d "token=$access3" "$IDP/introspect"; echo
printf 'refresh with rt3:   '; curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=refresh_token -d "refresh_token=$rt3" "$IDP/token"; echo
