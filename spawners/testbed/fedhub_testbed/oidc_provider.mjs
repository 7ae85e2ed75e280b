// The demo's and the tests' identity provider: a certified OpenID Connect provider (npm
// `oidc-provider`) on loopback, with the federation's people, their claims (groups, logins at
// centres, projects) and a password each. FedHub's hub logs in through it exactly as through a
// federation's real provider; only the accounts and this small login page are FedHub's.
//
//   node oidc_provider.mjs CONFIG.json        (started by fedhub_testbed/oidc.py)
//
// CONFIG.json (written 0600 by oidc.py): {issuer, port, cookie_keys, clients, users}
// where users maps a username to {password, claims}.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const modules = process.env.FEDHUB_NODE_MODULES || '/opt/fedhub/node/node_modules';
const { default: Provider } = await import(pathToFileURL(path.join(modules, 'oidc-provider/lib/index.js')).href);

// The scopes a client may ask for, and the claims each releases (also in the ID token).
const SCOPES = {
  openid: ['sub'],
  profile: ['name', 'preferred_username'],
  email: ['email'],
  groups: ['groups'],
  fedhub: ['centre_logins', 'projects'],
};

function account(username) {
  const user = config.users[username];
  if (!user) {
    return undefined;
  }
  return {
    accountId: username,
    async claims() {
      return { sub: username, preferred_username: username, name: username, ...user.claims };
    },
  };
}

function samePassword(given, expected) {
  const a = Buffer.from(String(given));
  const b = Buffer.from(String(expected));
  return a.length === b.length && timingSafeEqual(a, b);
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:26em;margin:4em auto}label,input,button{display:block;width:100%;margin:.4em 0}
.error{color:#a00}</style></head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, clientName, error, login) {
  return page('Federation login', `
<p>Log in to continue to ${escape(clientName)}.</p>
${error ? `<p class="error" id="login-error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label>Username <input id="login" name="login" value="${escape(login || '')}" autofocus></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="login-submit" type="submit">Log in</button>
</form>`);
}

// A signing key for this run (ID tokens are not kept across restarts of the demo's provider).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'fedhub-demo' };

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: config.cookie_keys },
  findAccount: (ctx, sub) => account(sub),
  claims: SCOPES,
  scopes: Object.keys(SCOPES).concat(['offline_access']),
  conformIdTokenClaims: false,
  clockTolerance: 2,  // hub and provider share a clock here (the default, 15 s, keeps expired tokens alive)
  features: {
    devInteractions: { enabled: false },
    // a client may revoke its own tokens (a user's refresh token ends with the grant it belongs to)
    revocation: { enabled: true, allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = page('Log out', `<p>You are logged out of the hub. Log out of the federation's login too?</p>
${form}<button id="logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, log out</button>
<button type="submit" form="op.logoutForm">No, stay logged in here</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Logged out', '<p>You are logged out.</p>');
      },
    },
  },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: config.access_token_ttl || 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Login error', `<p id="provider-error">${escape(out.error)}: ${escape(out.error_description || '')}</p>`);
  },
});
provider.proxy = false;

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) {
      throw new Error('form too large');
    }
  }
  return Object.fromEntries(new URLSearchParams(body));
}

// The login page, and consent given on the user's behalf: the hub is the federation's own
// (first-party) client, so there is nothing to ask.
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  const client = await provider.Client.find(params.client_id);
  const clientName = client?.clientName || params.client_id;
  if (prompt.name === 'login') {
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const user = config.users[form.login];
      if (!user || !samePassword(form.password, user.password)) {
        console.log(`login refused for ${JSON.stringify(form.login)}`);
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(loginForm(uid, clientName, 'Unknown username or wrong password.', form.login));
        return;
      }
      console.log(`login of ${form.login}`);
      await provider.interactionFinished(req, res, { login: { accountId: form.login } },
        { mergeWithLastSubmission: false });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(loginForm(uid, clientName));
    return;
  }
  if (prompt.name === 'consent') {
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) {
      grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    }
    if (prompt.details.missingOIDCClaims) {
      grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    }
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true });
    return;
  }
  res.writeHead(501, { 'Content-Type': 'text/plain' });
  res.end(`prompt ${prompt.name} is not supported here`);
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login))?$/.exec(req.url.split('?')[0]);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    console.log(`interaction ${match[1]} failed: ${err.message}`);
    if (!res.headersSent) {
      res.writeHead(400, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page('Login error', `<p id="provider-error">This login has expired or is not valid
(${escape(err.message)}). Go back to the hub and log in again.</p>`));
    }
  }
});
server.listen(config.port, '127.0.0.1', () => {
  console.log(`FedHub's OpenID Connect provider at ${config.issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
