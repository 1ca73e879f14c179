/**
 * Signing in with GitHub (the GitHub App's user authorization, web flow):
 * `/login` sends the browser to GitHub with a `state` bound to a cookie,
 * `/login/callback` takes the code back and sets the session cookie,
 * `POST /logout` ends it (CSRF-protected). docs/deployment.md, Signing in.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { SignInError } from '../access/errors.js';
import { SESSION_TTL_MS, SIGN_IN_TTL_MS } from '../access/sessions.js';
import { NotConfiguredError } from '../lib/errors.js';
import { PayloadTooLargeError } from '../minions/errors.js';
import type { AppEnv } from './env.js';
import { SESSION_COOKIE, SIGN_IN_COOKIE, csrfProtected } from './guards.js';

const secure = (c: Context<AppEnv>) => c.var.tower.publicUrl.startsWith('https:');

function requireSignIn(c: Context<AppEnv>) {
  if (!c.var.tower.access.signInEnabled) {
    throw new NotConfiguredError(
      'Signing in with GitHub is not configured: set TOWER_GITHUB_CLIENT_ID and TOWER_GITHUB_CLIENT_SECRET',
    );
  }
}

/** A sign-out form is a few hundred bytes. */
const formLimit = bodyLimit({
  maxSize: 4096,
  onError: () => {
    throw new PayloadTooLargeError('A sign-out request has no body to speak of');
  },
});

export const signInRoutes = new Hono<AppEnv>()
  .get('/login', (c) => {
    requireSignIn(c);
    const { url, stateCookie } = c.var.tower.access.startSignIn(c.req.query('next'));
    setCookie(c, SIGN_IN_COOKIE, stateCookie, {
      httpOnly: true,
      sameSite: 'Lax',
      secure: secure(c),
      path: '/login',
      maxAge: SIGN_IN_TTL_MS / 1000,
    });
    return c.redirect(url, 302);
  })
  .get('/login/callback', async (c) => {
    requireSignIn(c);
    const error = c.req.query('error');
    if (error !== undefined) {
      const why = c.req.query('error_description') ?? error;
      throw new SignInError(`GitHub did not sign you in: ${why.slice(0, 300)}`);
    }
    const { sessionCookie, next } = await c.var.tower.access.finishSignIn({
      code: c.req.query('code'),
      state: c.req.query('state'),
      stateCookie: getCookie(c, SIGN_IN_COOKIE),
    });
    deleteCookie(c, SIGN_IN_COOKIE, { path: '/login', secure: secure(c) });
    setCookie(c, SESSION_COOKIE, sessionCookie, {
      httpOnly: true,
      sameSite: 'Lax',
      secure: secure(c),
      path: '/',
      maxAge: SESSION_TTL_MS / 1000,
    });
    return c.redirect(next, 303);
  })
  .post('/logout', formLimit, csrfProtected, (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: secure(c) });
    return c.redirect('/', 303);
  });
