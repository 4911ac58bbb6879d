// Login with the configured OIDC issuer: authorization code with PKCE (RFC 7636), a public client.
// The access token lives in sessionStorage (this tab only) and goes out as a bearer header.

export interface OidcConfig {
  issuer: string;
  clientId: string;
  scope: string;
}

const TOKEN = "refsys.token";
const PENDING = "refsys.login";

interface Pending {
  state: string;
  verifier: string;
  returnTo: string;
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

export function currentToken(): string | null {
  const stored = sessionStorage.getItem(TOKEN);
  if (!stored) return null;
  const { token, expires } = JSON.parse(stored) as { token: string; expires: number };
  if (Date.now() >= expires) {
    sessionStorage.removeItem(TOKEN);
    return null;
  }
  return token;
}

export function logout(): void {
  sessionStorage.removeItem(TOKEN);
}

const base64url = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function randomText(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function discover(issuer: string): Promise<Discovery> {
  const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the issuer's discovery document answered ${response.status}`);
  return (await response.json()) as Discovery;
}

const redirectUri = (): string => `${location.origin}/`;

export async function login(config: OidcConfig): Promise<void> {
  const discovery = await discover(config.issuer);
  const verifier = randomText();
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const pending: Pending = { state: randomText(), verifier, returnTo: location.search };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state: pending.state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  location.assign(`${discovery.authorization_endpoint}?${params.toString()}`);
}

/** After the issuer sent the browser back with ?code=&state=: the token, and the search the user was on. */
export async function completeLogin(config: OidcConfig): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const stored = sessionStorage.getItem(PENDING);
  if (!code || !stored) {
    if (params.get("error")) throw new Error(`login refused: ${params.get("error_description") ?? params.get("error")}`);
    return null;
  }
  sessionStorage.removeItem(PENDING);
  const pending = JSON.parse(stored) as Pending;
  if (params.get("state") !== pending.state) throw new Error("login answer with another state: ignored");
  const discovery = await discover(config.issuer);
  const response = await fetch(discovery.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`the issuer refused the code: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { access_token: string; expires_in?: number };
  const expires = Date.now() + (body.expires_in ?? 300) * 1000;
  sessionStorage.setItem(TOKEN, JSON.stringify({ token: body.access_token, expires }));
  return pending.returnTo;
}
