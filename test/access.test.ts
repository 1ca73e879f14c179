/**
 * Issue 12, finding 8 and acceptance 2: who may read what. Against the
 * GitHub simulator end to end: people sign in with GitHub (the app's OAuth
 * web flow, over HTTP), a private repository's graphs, jobs, runs, logs,
 * artifacts and queue are 404 to anyone GitHub does not let read it, API
 * tokens read what they name, the minion inventory, the pending jobs and
 * /metrics are for operator tokens, and sign-out needs its CSRF token.
 */
import { createHash } from 'node:crypto';
import { desc, eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PERMISSION_TTL_MS, localPath } from '../src/access/access.js';
import { createApiTokens } from '../src/access/api-tokens.js';
import { createPermissionCache } from '../src/access/permission-cache.js';
import { createSealer } from '../src/access/sessions.js';
import { tokensCommand } from '../src/cli/tokens.js';
import { createAccessQueries } from '../src/db/access.js';
import { apiTokens, graphs } from '../src/db/schema.js';
import { systemClock } from '../src/lib/clock.js';
import type { SimRepository } from '../src/sandbox/model.js';
import { backends, type TestDatabase } from './support/databases.js';
import { startGitHubTower, type GitHubTower, type TestMinion } from './support/github-tower.js';

const CI = `version: 1
schedulers:
  - { on: push, branches: [main], graph: ci }
graphs:
  ci:
    jobs:
      build: { requires: [linux], command: make build }
      test: { requires: [linux], command: make test, needs: [build] }
`;
const FILES = { 'README.md': '# r\n', Makefile: 'all:\n', '.tower/ci.yml': CI };

/** What a repository's first push made: its graph, the build job and its run. */
type Built = { graphId: number; jobId: number; runId: number };

describe.each(backends())('sign-in and read access on $name', (backend) => {
  let database: TestDatabase;
  let gt: GitHubTower;
  let secret: SimRepository;
  let vault: SimRepository;
  let minion: TestMinion;
  let operator: string;
  const built: Record<string, Built> = {};

  const request = (path: string, init: RequestInit = {}) => gt.tower.app.request(path, init);
  const withToken = (path: string, token: string) =>
    request(path, { headers: { authorization: `Bearer ${token}` } });
  const withSession = (path: string, session: string) =>
    request(path, { headers: { cookie: `tower_session=${session}` } });

  const cookieOf = (response: Response, name: string) =>
    response.headers
      .getSetCookie()
      .map((line) => line.split(';')[0]!)
      .find((pair) => pair.startsWith(`${name}=`))
      ?.slice(name.length + 1);

  /** A browser signed in to GitHub as `login` signs in to Tower; the session cookie's value. */
  async function signIn(login: string, next = '/'): Promise<{ session: string; landed: string }> {
    const start = await request(`/login?next=${encodeURIComponent(next)}`);
    expect(start.status).toBe(302);
    const authorize = start.headers.get('location')!;
    expect(authorize.startsWith(`${gt.s.sim.urls.web}/login/oauth/authorize?`)).toBe(true);
    const state = cookieOf(start, 'tower_sign_in')!;
    // On GitHub: already signed in there, so the app's authorization sends the browser back.
    const github = await fetch(authorize, {
      redirect: 'manual',
      headers: { cookie: `user_session=${gt.s.sim.browserSession(login)}` },
    });
    expect(github.status).toBe(302);
    const back = new URL(github.headers.get('location')!);
    expect(back.origin + back.pathname).toBe('http://localhost/login/callback');
    const callback = await request(back.pathname + back.search, {
      headers: { cookie: `tower_sign_in=${state}` },
    });
    expect(callback.status).toBe(303);
    const session = cookieOf(callback, 'tower_session')!;
    expect(callback.headers.get('set-cookie')).toMatch(/tower_session=[^;]+;.*HttpOnly/);
    expect(callback.headers.get('set-cookie')).toMatch(/SameSite=Lax/);
    return { session, landed: callback.headers.get('location')! };
  }

  /** Pushes to the repository; the minion runs its graph (build with a log and an artifact). */
  async function build(repository: SimRepository, runDownstream = true): Promise<Built> {
    await gt.s.sim.push(repository, {
      branch: 'main',
      files: { ...FILES, 'src/change.txt': `${Math.random()}\n` },
      author: 'acme-admin',
    });
    await gt.settle();
    const [graph] = await database.db
      .select({ id: graphs.id })
      .from(graphs)
      .where(eq(graphs.repositoryId, repository.id))
      .orderBy(desc(graphs.id))
      .limit(1);
    const run = (await minion.claim())!;
    expect([run.graphId, run.label]).toEqual([graph!.id, 'build']);
    await minion.log(run.runId, `building ${repository.fullName}\n`);
    await minion.artifact(run.runId, 'out/report.txt', `report of ${repository.fullName}\n`);
    await minion.report(run.runId, 'success', { exitCode: 0 });
    await gt.settle();
    if (runDownstream) await minion.runAll();
    const detail = (await (await withToken(`/api/v1/runs/${run.runId}`, operator)).json()) as {
      jobId: number;
    };
    return { graphId: graph!.id, jobId: detail.jobId, runId: run.runId };
  }

  /** Every read of one repository's data, with the repository's name for the queue. */
  const readsOf = (b: Built, repository: SimRepository) => [
    `/graphs/${b.graphId}`,
    `/jobs/${b.jobId}`,
    `/api/v1/graphs/${b.graphId}`,
    `/api/v1/runs/${b.runId}`,
    `/api/v1/runs/${b.runId}/log`,
    `/api/v1/runs/${b.runId}/log?follow=1`,
    `/api/v1/runs/${b.runId}/manifest`,
    `/api/v1/runs/${b.runId}/artifacts/out/report.txt`,
    `/api/v1/repos/${repository.fullName}/queue`,
  ];

  beforeAll(async () => {
    database = await backend.open();
    gt = await startGitHubTower(database, { files: FILES, signIn: true });
    const { sim, installation } = gt.s;
    secret = await sim.createRepository({ owner: 'acme', name: 'secret', private: true });
    vault = await sim.createRepository({ owner: 'acme', name: 'vault', private: true });
    // GitHub tells Tower the repositories are private when they join the installation.
    await sim.addRepositories(installation, [secret, vault], 'acme-admin');
    sim.setPermission(secret, 'alice', 'read');
    await gt.settle();
    operator = (
      await createApiTokens({
        queries: createAccessQueries(database.db),
        clock: systemClock,
      }).create({ name: 'ops', scope: { operator: true } })
    ).token;
    minion = await gt.minion(['linux']);
    built.widgets = await build(gt.s.repository);
    built.secret = await build(secret);
    built.vault = await build(vault);
  }, 240_000);
  afterAll(async () => {
    await gt?.close();
    await database?.dispose();
  });
  afterEach(() => {
    expect(gt.s.sim.violations.list()).toEqual([]);
  });

  it('answers an anonymous reader 404 for everything of a private repository, as for what does not exist', async () => {
    for (const path of readsOf(built.secret!, secret)) {
      const response = await request(path);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      const body = await response.text();
      expect(body).not.toContain('make build');
      expect(body).not.toContain('report of');
    }
    // The same words as for an id nobody has.
    expect(await (await request(`/api/v1/graphs/${built.secret!.graphId}`)).json()).toEqual({
      error: 'not_found',
      message: `No graph ${built.secret!.graphId}`,
    });
    expect(await (await request('/api/v1/graphs/999999')).json()).toEqual({
      error: 'not_found',
      message: 'No graph 999999',
    });
  });

  it("keeps a public repository's graphs, jobs, runs, logs, artifacts and queue readable without signing in", async () => {
    for (const path of readsOf(built.widgets!, gt.s.repository)) {
      const response = await request(path);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      await response.body?.cancel();
    }
    const page = await (await request(`/graphs/${built.widgets!.graphId}`)).text();
    expect(page).toContain('<a href="/login?next=%2Fgraphs%2F');
  });

  it('shows a private graph to a person with read access on GitHub, and 404 to one without, page and API', async () => {
    const mallory = await signIn('mallory');
    for (const path of readsOf(built.secret!, secret)) {
      const response = await withSession(path, mallory.session);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      await response.body?.cancel();
    }

    const alice = await signIn('alice', `/graphs/${built.secret!.graphId}`);
    expect(alice.landed).toBe(`/graphs/${built.secret!.graphId}`);
    for (const path of readsOf(built.secret!, secret)) {
      const response = await withSession(path, alice.session);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      await response.body?.cancel();
    }
    const page = await (
      await withSession(`/graphs/${built.secret!.graphId}`, alice.session)
    ).text();
    expect(page).toContain('alice');
    expect(page).toContain('Sign out');
    // Read access to acme/secret is no read access to acme/vault.
    const other = await withSession(`/graphs/${built.vault!.graphId}`, alice.session);
    expect(other.status).toBe(404);
  });

  it("shows nothing more once GitHub no longer honours the person's token", async () => {
    const bob = await signIn('bob');
    gt.s.sim.setPermission(vault, 'bob', 'read');
    // The person revokes the app on GitHub before reading: GitHub answers 401, Tower shows nothing.
    gt.s.sim.oauth.revokeTokens('bob');
    expect((await withSession(`/api/v1/graphs/${built.vault!.graphId}`, bob.session)).status).toBe(
      404,
    );
  });

  it('hides a repository made private on GitHub from its next event on', async () => {
    const widgets = gt.s.repository;
    const path = `/api/v1/graphs/${built.widgets!.graphId}`;
    expect((await request(path)).status).toBe(200);
    widgets.private = true;
    try {
      await gt.s.sim.push(widgets, {
        branch: 'main',
        files: { 'src/private.txt': 'now private\n' },
        author: 'acme-admin',
      });
      await gt.settle();
      expect((await request(path)).status).toBe(404);
    } finally {
      widgets.private = false;
      await gt.s.sim.push(widgets, {
        branch: 'main',
        files: { 'src/private.txt': 'public again\n' },
        author: 'acme-admin',
      });
      await gt.settle();
      await minion.runAll();
    }
    expect((await request(path)).status).toBe(200);
  });

  it('refuses a forged or altered session cookie: the reader is anonymous', async () => {
    const alice = await signIn('alice');
    const flipped =
      alice.session.slice(0, 40) +
      (alice.session[40] === 'A' ? 'B' : 'A') +
      alice.session.slice(41);
    for (const session of [flipped, 'not-a-session', 'x'.repeat(5000)]) {
      const response = await withSession(`/api/v1/graphs/${built.secret!.graphId}`, session);
      expect(response.status).toBe(404);
    }
  });

  it('lets a token scoped to one repository read that repository and nothing else', async () => {
    const tokens = createApiTokens({
      queries: createAccessQueries(database.db),
      clock: systemClock,
    });
    const { token } = await tokens.create({
      name: 'secret reader',
      scope: { operator: false, repositoryIds: [secret.id] },
    });
    for (const path of readsOf(built.secret!, secret)) {
      const response = await withToken(path, token);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      await response.body?.cancel();
    }
    for (const path of readsOf(built.vault!, vault)) {
      const response = await withToken(path, token);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      await response.body?.cancel();
    }
    for (const path of ['/api/v1/minions', '/api/v1/queue', '/metrics']) {
      expect((await withToken(path, token)).status).toBe(403);
    }
    // An unknown token is refused outright, not taken for an anonymous reader.
    expect((await withToken(`/graphs/${built.widgets!.graphId}`, 'twr_unknown')).status).toBe(401);
  });

  it('keeps the minion inventory, the pending jobs and /metrics for operator tokens', async () => {
    for (const path of ['/api/v1/minions', '/api/v1/queue', '/metrics']) {
      const anonymous = await request(path);
      expect({ path, status: anonymous.status }).toEqual({ path, status: 401 });
      expect(await anonymous.text()).not.toContain('minion-linux');
      // Signed in is not an operator.
      const alice = await signIn('alice');
      expect((await withSession(path, alice.session)).status).toBe(403);
      const allowed = await withToken(path, operator);
      expect({ path, status: allowed.status }).toEqual({ path, status: 200 });
      await allowed.body?.cancel();
    }
    const { minions } = (await (await withToken('/api/v1/minions', operator)).json()) as {
      minions: { name: string }[];
    };
    expect(minions.map((m) => m.name)).toContain('minion-linux');
  });

  it("lets a minion read a private graph's manifests while it runs one of its jobs, and not after", async () => {
    const upstream = await build(secret, false);
    const manifest = `/api/v1/runs/${upstream.runId}/manifest`;
    expect((await withToken(manifest, minion.credential)).status).toBe(404);
    const downstream = (await minion.claim())!;
    expect([downstream.graphId, downstream.label]).toEqual([upstream.graphId, 'test']);
    const read = await withToken(manifest, minion.credential);
    expect(read.status).toBe(200);
    expect(((await read.json()) as { label: string }).label).toBe('build');
    // Of another private repository's graph, nothing.
    expect(
      (await withToken(`/api/v1/runs/${built.vault!.runId}/manifest`, minion.credential)).status,
    ).toBe(404);
    await minion.report(downstream.runId, 'success', { exitCode: 0 });
    expect((await withToken(manifest, minion.credential)).status).toBe(404);
    await gt.settle();
  });

  it("gives a job a read token for its own graph's manifests and artifacts while its run runs, and nothing else", async () => {
    const upstream = await build(secret, false);
    const manifest = `/api/v1/runs/${upstream.runId}/manifest`;
    const downstream = (await minion.claim())!;
    expect(downstream.graphId).toBe(upstream.graphId);
    expect(downstream.readToken).toMatch(/^tmr_/);
    // The token is the job's: its own graph of a private repository, nothing else.
    expect((await withToken(manifest, downstream.readToken)).status).toBe(200);
    expect(
      (await withToken(`/api/v1/runs/${built.vault!.runId}/manifest`, downstream.readToken)).status,
    ).toBe(404);
    expect((await withToken('/api/v1/minions', downstream.readToken)).status).toBe(403);
    // A token nobody was given, and the job's once its run has ended: 401.
    expect((await withToken(manifest, `tmr_${'x'.repeat(43)}`)).status).toBe(401);
    expect((await withToken(manifest, `tmr_${downstream.runId}_${'x'.repeat(43)}`)).status).toBe(
      401,
    );
    await minion.report(downstream.runId, 'success', { exitCode: 0 });
    expect((await withToken(manifest, downstream.readToken)).status).toBe(401);
    await gt.settle();
  });

  it('refuses a cross-site sign-out and one without the CSRF token; signs out with it', async () => {
    const alice = await signIn('alice');
    const page = await (
      await withSession(`/graphs/${built.secret!.graphId}`, alice.session)
    ).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const logout = (headers: Record<string, string>, body: string) =>
      request('/logout', {
        method: 'POST',
        headers: {
          cookie: `tower_session=${alice.session}`,
          'content-type': 'application/x-www-form-urlencoded',
          ...headers,
        },
        body,
      });
    // A form on another site posting here: the browser sends its Origin, and no token.
    const forged = await logout({ origin: 'https://evil.example' }, '');
    expect(forged.status).toBe(403);
    expect(forged.headers.get('set-cookie')).toBeNull();
    expect((await logout({ origin: 'https://evil.example' }, `csrf=${csrf}`)).status).toBe(403);
    expect((await logout({}, 'csrf=wrong')).status).toBe(403);
    const ok = await logout({ origin: 'http://localhost' }, `csrf=${encodeURIComponent(csrf)}`);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('set-cookie')).toMatch(/tower_session=;.*Max-Age=0/);
  });

  it('refuses a callback whose state this browser did not start, and a code used twice', async () => {
    const start = await request('/login');
    const authorize = start.headers.get('location')!;
    const github = await fetch(authorize, {
      redirect: 'manual',
      headers: { cookie: `user_session=${gt.s.sim.browserSession('alice')}` },
    });
    const back = new URL(github.headers.get('location')!);
    // Another browser (no sign-in cookie, or another's) brings the code: refused.
    const other = await request('/login');
    const stolen = await request(back.pathname + back.search, {
      headers: { cookie: `tower_sign_in=${cookieOf(other, 'tower_sign_in')}` },
    });
    expect(stolen.status).toBe(400);
    expect(cookieOf(stolen, 'tower_session')).toBeUndefined();
    const own = `tower_sign_in=${cookieOf(start, 'tower_sign_in')}`;
    const first = await request(back.pathname + back.search, { headers: { cookie: own } });
    expect(first.status).toBe(303);
    const again = await request(back.pathname + back.search, { headers: { cookie: own } });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { message: string }).message).toMatch(/incorrect or expired/);
  });

  it('makes, lists and revokes tokens with `tower tokens`: shown once, stored hashed', async () => {
    const out: string[] = [];
    const io = {
      out: (text: string) => void out.push(text),
      err: (text: string) => void out.push(text),
    };
    const open = async () => ({ ...database, close: async () => {} });
    const run = (...args: string[]) =>
      tokensCommand(open, io).exitOverride().parseAsync(args, { from: 'user' });

    await run('create', '--repo', 'acme/vault', '--name', 'vault ci');
    const token = /\n {2}(twr_\S+)\n/.exec(out.join(''))![1]!;
    const [row] = await database.db.select().from(apiTokens).where(eq(apiTokens.name, 'vault ci'));
    expect(row!.tokenHash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(token);
    expect((await withToken(`/api/v1/graphs/${built.vault!.graphId}`, token)).status).toBe(200);
    expect((await withToken(`/api/v1/graphs/${built.secret!.graphId}`, token)).status).toBe(404);

    out.length = 0;
    await run('list');
    expect(out.join('')).toMatch(new RegExp(`${row!.id}\\s+vault ci\\s+repositories ${vault.id}`));
    expect(out.join('')).not.toContain(token);

    await run('revoke', String(row!.id));
    expect((await withToken(`/api/v1/graphs/${built.vault!.graphId}`, token)).status).toBe(401);
    await expect(run('create', '--repo', 'acme/nowhere')).rejects.toThrow(
      /does not know acme\/nowhere/,
    );
    await expect(run('create')).rejects.toThrow(/--repo owner\/name/);
  });
});

describe('the permission cache', () => {
  it('keeps an answer for a minute at most, and forgets the oldest when full', () => {
    let now = 0;
    const cache = createPermissionCache({
      ttlMs: PERMISSION_TTL_MS,
      maxEntries: 2,
      clock: { now: () => new Date(now) },
    });
    cache.set('1:1', true);
    now = PERMISSION_TTL_MS - 1;
    expect(cache.get('1:1')).toBe(true);
    now = PERMISSION_TTL_MS;
    expect(cache.get('1:1')).toBeUndefined();
    cache.set('a', true);
    cache.set('b', false);
    cache.set('c', true);
    expect([cache.get('a'), cache.get('b'), cache.get('c'), cache.size]).toEqual([
      undefined,
      false,
      true,
      2,
    ]);
  });
});

describe('sign-in cookies and redirects', () => {
  it('goes back only to a path on this server after signing in', () => {
    expect(localPath('/graphs/5?after=a')).toBe('/graphs/5?after=a');
    for (const next of [
      undefined,
      '',
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      '/a\r\nSet-Cookie: x=1',
      `/${'a'.repeat(2001)}`,
    ]) {
      expect(localPath(next)).toBe('/');
    }
  });

  it('opens a sealed cookie only for its purpose, under its key, before it expires', () => {
    let now = 1_000_000;
    const clock = { now: () => new Date(now) };
    const sealer = createSealer('a-session-secret-for-tests-only-0123456789', clock);
    const session = {
      userId: 7,
      login: 'alice',
      githubToken: 'ghu_x',
      csrf: 'c'.repeat(43),
      expiresAt: now + 1000,
    };
    const sealed = sealer.sealSession(session);
    expect(sealer.openSession(sealed)).toEqual(session);
    expect(sealed).not.toContain('ghu_x');
    // A sign-in state cookie is no session, and another key opens nothing.
    expect(sealer.openSignIn(sealed)).toBeUndefined();
    const other = createSealer('another-session-secret-for-tests-0123456789', clock);
    expect(other.openSession(sealed)).toBeUndefined();
    now += 1000;
    expect(sealer.openSession(sealed)).toBeUndefined();
  });
});
