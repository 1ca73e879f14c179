/**
 * The access rules (src/access/) as middleware in front of the read API and
 * the pages: the handlers stay as they are, and a route is guarded where it
 * is mounted. What the viewer may not read is answered exactly as what does
 * not exist (404), so that private repositories' graphs, jobs and runs do not
 * reveal themselves.
 */
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import type { ReadTarget, Viewer } from '../access/access.js';
import { NotFoundError } from '../minions/errors.js';
import type { AppEnv } from './env.js';
import { bearerToken, idParam } from './requests.js';

export const SESSION_COOKIE = 'tower_session';
export const SIGN_IN_COOKIE = 'tower_sign_in';
/** The form field (or `x-csrf-token` header) of state-changing page requests. */
export const CSRF_FIELD = 'csrf';

/** Who is asking, worked out once per request. */
export async function viewerOf(c: Context<AppEnv>): Promise<Viewer> {
  const known = c.get('viewer');
  if (known) return known;
  const viewer = await c.var.tower.access.identify({
    bearer: bearerToken(c),
    sessionCookie: getCookie(c, SESSION_COOKIE),
  });
  c.set('viewer', viewer);
  return viewer;
}

function guard(
  find: (c: Context<AppEnv>) => Promise<{ target: ReadTarget | undefined; missing: string }>,
) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const { target, missing } = await find(c);
    if (!target || !(await c.var.tower.access.mayRead(await viewerOf(c), target))) {
      throw new NotFoundError(missing);
    }
    await next();
  });
}

/** Routes with a graph id in `:id`. */
export const readsGraph = guard(async (c) => {
  const id = idParam(c, 'id');
  return { target: await c.var.tower.access.repositoryOfGraph(id), missing: `No graph ${id}` };
});

/** Routes with a job id in `:id`. */
export const readsJob = guard(async (c) => {
  const id = idParam(c, 'id');
  return { target: await c.var.tower.access.repositoryOfJob(id), missing: `No job ${id}` };
});

/** Routes with a run id in `:id`: the run, its log, manifest and artifacts. */
export const readsRun = guard(async (c) => {
  const id = idParam(c, 'id');
  return { target: await c.var.tower.access.repositoryOfRun(id), missing: `No run ${id}` };
});

/** Routes under /repos/:owner/:repo/: a repository Tower does not know is the handler's to answer. */
export const readsRepository = createMiddleware<AppEnv>(async (c, next) => {
  const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
  const { access } = c.var.tower;
  const target = await access.repositoryByName(fullName);
  if (target && !(await access.mayRead(await viewerOf(c), target))) {
    throw new NotFoundError(`Tower is not installed on ${fullName}`);
  }
  await next();
});

/** The minion inventory, the pending jobs of every repository, /metrics. */
export const operatorsOnly = createMiddleware<AppEnv>(async (c, next) => {
  c.var.tower.access.requireOperator(await viewerOf(c));
  await next();
});

/** State-changing page requests: the session's CSRF token, from this server's own pages. */
export const csrfProtected = createMiddleware<AppEnv>(async (c, next) => {
  const viewer = await viewerOf(c);
  let token = c.req.header('x-csrf-token');
  if (
    token === undefined &&
    /^application\/x-www-form-urlencoded\b/i.test(c.req.header('content-type') ?? '')
  ) {
    const field = (await c.req.parseBody())[CSRF_FIELD];
    token = typeof field === 'string' ? field : undefined;
  }
  c.var.tower.access.checkCsrf(viewer.kind === 'person' ? viewer.session : undefined, {
    token,
    origin: c.req.header('origin'),
    ownOrigin: new URL(c.var.tower.publicUrl).origin,
  });
  await next();
});
