// A real OpenID provider (panva/oidc-provider) for peernet's sign-in tests.
//
// Environment:
//   CLIENTS     JSON list of clients: {client_id, client_secret, redirect_uris,
//               post_logout_redirect_uris}
//   USERS_FILE  JSON file {login: {password, username?, groups?}}; read again on every
//               request, so a test can change someone's groups between sign-ins. A user
//               without "groups" gets no groups claim at all.
//   PORT        port to listen on (default: any free one)
// Prints "ready <issuer>" once listening. The login page checks the password from
// USERS_FILE; consent is granted without a page (a first-party client).
import fs from 'node:fs';
import http from 'node:http';
import { parse } from 'node:querystring';

import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.CLIENTS);
const users = () => JSON.parse(fs.readFileSync(process.env.USERS_FILE, 'utf8'));
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(uid, error) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Agency sign-in</title></head>
<body><h1>Agency sign-in</h1>${error ? `<p id="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label>Login <input id="login" name="login" autocomplete="off" required></label>
<label>Password <input id="password" name="password" type="password" required></label>
<button id="submit" type="submit">Sign in</button></form></body></html>`;
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return parse(Buffer.concat(chunks).toString('utf8'));
}

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    cookies: { keys: ['peernet-test-provider-cookie-key'] },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'groups'] },
    conformIdTokenClaims: false, // scope claims (groups) go into the ID token itself
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile email');
      await grant.save();
      return grant;
    },
    async findAccount(ctx, id) {
      const user = users()[id];
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          const claims = { sub: id, preferred_username: user.username ?? id, name: id };
          if (user.groups) claims.groups = user.groups;
          return claims;
        },
      };
    },
  });

  provider.use(async (ctx, next) => {
    const m = ctx.path.match(/^\/interaction\/([\w-]+)(\/login)?$/);
    if (!m) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (ctx.method === 'GET') {
      ctx.type = 'html';
      ctx.body = page(details.uid);
      return undefined;
    }
    const form = await body(ctx.req);
    const user = users()[form.login];
    if (!user || user.password !== form.password) {
      ctx.type = 'html';
      ctx.status = 401;
      ctx.body = page(details.uid, 'Wrong login or password');
      return undefined;
    }
    const to = await provider.interactionResult(ctx.req, ctx.res,
      { login: { accountId: form.login } }, { mergeWithLastSubmission: false });
    ctx.redirect(to);
    ctx.status = 303;
    return undefined;
  });

  server.on('request', provider.callback());
  console.log(`ready ${issuer}`);
});
