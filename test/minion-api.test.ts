import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { logChunks, minions } from '../src/db/schema.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { createTower, type Tower } from '../src/main.js';
import { createFileArtifactStore } from '../src/minions/artifact-store.js';
import type { ClaimedRun } from '../src/minions/protocol.js';
import { inProcessConfig } from './support/config.js';
import { operatorToken } from './support/access.js';
import { backends, type TestDatabase } from './support/databases.js';
import { insertEvent, insertRepositoryFixture } from './support/fixtures.js';
import { job } from './support/graph-specs.js';

const TOKEN = 'registration-token-0123456789';
const logger = createLogger({ level: 'silent' });

/** A clock the tests move by hand; it only goes forward, across tests too. */
function manualClock(start: Date) {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000;
    },
  };
}

function graphSpec(name: string, jobs: JobSpec[]): GraphSpec {
  return {
    version: GRAPH_SPEC_VERSION,
    graph: name,
    event: { type: 'push', branch: 'main', sha: 'b'.repeat(40), changedFiles: null },
    defines: {},
    jobs: [...jobs].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)),
  };
}

type Queue = { queue: { tags: string[]; trust: string; pending: number }[] };
type GraphBody = {
  jobs: { label: string; state: string; result: string | null; runs: unknown[] }[];
};

type Call = {
  token?: string;
  json?: unknown;
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
};

describe.each(backends())('minion API on $name', (backend) => {
  let database: TestDatabase;
  let tower: Tower;
  let artifactsDir: string;
  const clock = manualClock(new Date());
  let tagCounter = 0;
  const graphsOfTest: number[] = [];
  /** The minion inventory and the pending jobs are for operators. */
  let operator: string;

  beforeAll(async () => {
    database = await backend.open();
    artifactsDir = await mkdtemp(join(tmpdir(), 'tower-artifacts-'));
    tower = await createTower({
      config: { ...inProcessConfig(undefined), minionTokens: { trusted: TOKEN } },
      logger,
      clock,
      leaseClock: clock,
      database,
      artifacts: createFileArtifactStore(artifactsDir),
    });
    await insertRepositoryFixture(database.db);
    operator = await operatorToken(database);
  });
  afterAll(async () => {
    await tower.close();
    await database.dispose();
    await rm(artifactsDir, { recursive: true, force: true });
  });
  afterEach(async () => {
    // Claims are global: nothing a test leaves pending or running reaches the next one.
    for (const graphId of graphsOfTest.splice(0)) await tower.scheduler.cancel({ graphId });
  });

  function call(method: string, path: string, options: Call = {}) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let body: string | Uint8Array | undefined = options.raw;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    return tower.app.request(path, { method, headers, body });
  }

  const minionCall = (method: string, path: string, options: Call = {}) =>
    call(method, `/api/v1/minion${path}`, options);

  async function register(tags: string[], name = 'builder') {
    const response = await minionCall('POST', '/register', { token: TOKEN, json: { name, tags } });
    expect(response.status).toBe(201);
    return (await response.json()) as { minionId: number; credential: string };
  }

  const newEvent = () => insertEvent(database.db, 'b'.repeat(40));

  async function createGraph(jobs: JobSpec[]) {
    const created = await tower.scheduler.createGraph({
      repositoryId: 10,
      eventId: await newEvent(),
      spec: graphSpec('per-checkin', jobs),
      trust: 'trusted',
    });
    graphsOfTest.push(created.graphId);
    return created.graphId;
  }

  /** A tag no other test uses, and a command job requiring it. */
  function fresh() {
    const tag = `t${++tagCounter}`;
    return {
      tag,
      cmd: (label: string, options = {}) => job(label, { requires: [tag], ...options }),
    };
  }

  async function claim(credential: string, waitSeconds = 0) {
    return minionCall('POST', '/claim', { token: credential, json: { waitSeconds } });
  }

  async function claimRun(credential: string) {
    const response = await claim(credential);
    expect(response.status).toBe(200);
    return (await json<{ run: ClaimedRun }>(response)).run;
  }

  /** Test bodies are checked by the assertions. */
  const json = <T = Record<string, unknown>>(response: Response) => response.json() as Promise<T>;

  async function messageOf(response: Response) {
    return ((await response.json()) as { message: string }).message;
  }

  const runOf = async (runId: number) => await json(await call('GET', `/api/v1/runs/${runId}`));

  it('registers minions with the registration token only', async () => {
    const first = await register(['linux'], 'same-name');
    expect(first.credential).toMatch(/^tmc_[A-Za-z0-9_-]{43}$/);
    const [row] = await database.db.select().from(minions).where(eq(minions.id, first.minionId));
    expect(row).toMatchObject({ name: 'same-name', tags: ['linux'], trust: 'trusted' });
    expect(row!.credentialHash).toBe(createHash('sha256').update(first.credential).digest('hex'));

    // Names are labels: the same name again is a new minion.
    const second = await register(['linux'], 'same-name');
    expect(second.minionId).not.toBe(first.minionId);
    expect(second.credential).not.toBe(first.credential);

    const body = { json: { name: 'x', tags: ['linux'] } };
    const wrong = await minionCall('POST', '/register', { ...body, token: 'not-the-token-at-all' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'unauthorized' });
    expect((await minionCall('POST', '/register', body)).status).toBe(401);
    // A minion credential is not a registration token.
    expect(
      (await minionCall('POST', '/register', { ...body, token: first.credential })).status,
    ).toBe(401);
  });

  it('refuses registration with 503 when TOWER_MINION_TOKEN is unset', async () => {
    const closed = await createTower({
      config: inProcessConfig(undefined),
      logger,
      clock,
      database,
      artifacts: createFileArtifactStore(artifactsDir),
    });
    try {
      const response = await closed.app.request('/api/v1/minion/register', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', tags: ['linux'] }),
      });
      expect(response.status).toBe(503);
      expect(await messageOf(response)).toContain('TOWER_MINION_TOKEN');
    } finally {
      await closed.close();
    }
  });

  it('answers a forged credential with 401 and changes nothing; a quarantined minion gets 403', async () => {
    const { tag, cmd } = fresh();
    const graphId = await createGraph([cmd('build')]);
    const minion = await register([tag]);
    const forged = `tmc_${randomBytes(32).toString('base64url')}`;
    for (const token of [forged, 'not-a-credential', '']) {
      const response = await claim(token);
      expect(response.status).toBe(401);
    }
    expect((await minionCall('POST', '/claim', { json: {} })).status).toBe(401);
    const status = await json<GraphBody>(await call('GET', `/api/v1/graphs/${graphId}`));
    expect(status.jobs[0]).toMatchObject({ label: 'build', state: 'pending', runs: [] });
    const [row] = await database.db.select().from(minions).where(eq(minions.id, minion.minionId));
    expect(row!.lastSeenAt).toBeNull();

    await database.db
      .update(minions)
      .set({ state: 'quarantined' })
      .where(eq(minions.id, minion.minionId));
    const quarantined = await claim(minion.credential);
    expect(quarantined.status).toBe(403);
    expect(await quarantined.json()).toMatchObject({
      error: 'quarantined',
      message: expect.stringContaining(`tower minions release ${minion.minionId}`),
    });
    expect((await call('GET', `/api/v1/graphs/${graphId}`)).status).toBe(200);
  });

  it('hands a run to a minion with the tags, 204 to one without, and marks it seen', async () => {
    const { tag, cmd } = fresh();
    const graphId = await createGraph([cmd('build', { command: 'make all' })]);
    const other = await register(['unrelated-tag']);
    const started = Date.now();
    const none = await claim(other.credential, 1);
    expect(none.status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);

    const minion = await register([tag, 'extra']);
    const run = await claimRun(minion.credential);
    expect(run).toMatchObject({
      graphId,
      label: 'build',
      attempt: 1,
      cause: 'scheduled',
      leaseSeconds: 120,
      sha: 'b'.repeat(40),
      repositoryId: 10,
      upstream: [],
      job: { label: 'build', command: 'make all', requires: [tag] },
    });
    const { minions: listed } = await json<{ minions: { id: number }[] }>(
      await call('GET', '/api/v1/minions', { token: operator }),
    );
    expect(listed.find((m) => m.id === minion.minionId)).toMatchObject({
      name: 'builder',
      tags: ['extra', tag].sort(),
      trust: 'trusted',
      state: 'active',
      lastSeenAt: clock.now().toISOString(),
    });
  });

  it('wakes a waiting claim promptly when a job is created, and lets the other waiter time out', async () => {
    const { tag, cmd } = fresh();
    const first = await register([tag]);
    const second = await register([tag]);
    const waiting = [claim(first.credential, 10), claim(second.credential, 1)];
    await new Promise((resolve) => setTimeout(resolve, 300));
    const created = Date.now();
    await createGraph([cmd('build')]);
    const winner = await Promise.race(waiting);
    expect(Date.now() - created).toBeLessThan(2000);
    expect(winner.status).toBe(200);
    const statuses = (await Promise.all(waiting)).map((response) => response.status).sort();
    expect(statuses).toEqual([200, 204]);
  });

  it('extends the lease on heartbeat and says stop after the job is cancelled', async () => {
    const { tag, cmd } = fresh();
    const graphId = await createGraph([cmd('build')]);
    const minion = await register([tag]);
    const run = await claimRun(minion.credential);
    const beat = await minionCall('POST', `/runs/${run.runId}/heartbeat`, {
      token: minion.credential,
      json: { leaseSeconds: 300 },
    });
    expect(beat.status).toBe(200);
    expect(await beat.json()).toEqual({
      leaseExpiresAt: new Date(clock.now().getTime() + 300_000).toISOString(),
    });

    await tower.scheduler.cancel({ graphId, jobId: run.jobId });
    const stopped = await minionCall('POST', `/runs/${run.runId}/heartbeat`, {
      token: minion.credential,
    });
    expect(stopped.status).toBe(409);
    expect(await stopped.json()).toMatchObject({ error: 'stop' });
  });

  it('appends logs once per seq, and serves them whole and followed as server-sent events', async () => {
    const { tag, cmd } = fresh();
    await createGraph([cmd('build')]);
    const minion = await register([tag]);
    const run = await claimRun(minion.credential);
    const log = (seq: number, data: string) =>
      minionCall('POST', `/runs/${run.runId}/logs`, {
        token: minion.credential,
        json: { seq, data },
      });
    expect((await log(0, 'hello\n')).status).toBe(204);
    expect((await log(1, 'world\n')).status).toBe(204);
    expect((await log(0, 'IGNORED\n')).status).toBe(204);
    const whole = await call('GET', `/api/v1/runs/${run.runId}/log`);
    expect(whole.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await whole.text()).toBe('hello\nworld\n');

    const followed = await call('GET', `/api/v1/runs/${run.runId}/log?follow=1`);
    expect(followed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = followed.text();
    expect((await log(2, 'line two\nand three\n')).status).toBe(204);
    const report = await minionCall('POST', `/runs/${run.runId}/report`, {
      token: minion.credential,
      json: { result: 'success', exitCode: 0 },
    });
    expect(report.status).toBe(200);
    const sse = parseSse(await text);
    expect(sse.filter((e) => e.event === 'log').map((e) => JSON.parse(e.data) as unknown)).toEqual([
      { seq: 0, data: 'hello\n' },
      { seq: 1, data: 'world\n' },
      { seq: 2, data: 'line two\nand three\n' },
    ]);
    expect(sse.at(-1)).toEqual({
      event: 'end',
      data: JSON.stringify({ state: 'done', result: 'success', reason: null }),
    });
    // A finished run's follow gives what there is and ends.
    const after = parseSse(
      await (await call('GET', `/api/v1/runs/${run.runId}/log?follow=1`)).text(),
    );
    expect(after.map((e) => e.event)).toEqual(['log', 'log', 'log', 'end']);
    expect((await call('GET', '/api/v1/runs/999999/log')).status).toBe(404);
    expect((await call('GET', '/api/v1/runs/999999/log?follow=1')).status).toBe(404);
  });

  it('stores artifacts, lists them in the manifest, and serves the same bytes', async () => {
    const { tag, cmd } = fresh();
    await createGraph([cmd('build')]);
    const minion = await register([tag]);
    const run = await claimRun(minion.credential);
    const bytes = randomBytes(200_000);
    const put = (name: string, body: Uint8Array | string, contentType?: string) =>
      minionCall('PUT', `/runs/${run.runId}/artifacts/${name}`, {
        token: minion.credential,
        raw: body,
        headers: contentType ? { 'content-type': contentType } : {},
      });
    const uploaded = await put('dist/app.bin', bytes, 'application/octet-stream');
    expect(uploaded.status).toBe(201);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const binUrl = `http://localhost/api/v1/runs/${run.runId}/artifacts/dist/app.bin`;
    expect(await uploaded.json()).toEqual({
      name: 'dist/app.bin',
      size: bytes.length,
      sha256,
      contentType: 'application/octet-stream',
      url: binUrl,
    });
    // Uploading a name again replaces it.
    expect((await put('notes.txt', 'first', 'text/plain')).status).toBe(201);
    expect((await put('notes.txt', 'second version', 'text/plain')).status).toBe(201);
    // The URL is normalised before routing; an encoded slash gets a `..` through to the name.
    for (const name of ['dist%2F..%2F..%2Fetc%2Fpasswd', 'a'.repeat(256), 'dist%2F%2Fx']) {
      const bad = await put(name, 'x');
      expect(bad.status).toBe(400);
      expect(await messageOf(bad)).toMatch(/^name: /);
    }

    const manifest = await json(await call('GET', `/api/v1/runs/${run.runId}/manifest`));
    expect(manifest).toEqual({
      version: 1,
      runId: run.runId,
      jobId: run.jobId,
      label: 'build',
      result: null,
      artifacts: [
        {
          name: 'dist/app.bin',
          size: bytes.length,
          sha256,
          contentType: 'application/octet-stream',
          url: binUrl,
        },
        {
          name: 'notes.txt',
          size: 14,
          sha256: createHash('sha256').update('second version').digest('hex'),
          contentType: 'text/plain',
          url: `http://localhost/api/v1/runs/${run.runId}/artifacts/notes.txt`,
        },
      ],
    });
    const download = await call('GET', new URL(binUrl).pathname);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('application/octet-stream');
    expect(download.headers.get('content-security-policy')).toBe('sandbox');
    expect(Buffer.from(await download.arrayBuffer()).equals(bytes)).toBe(true);
    const notes = await call('GET', `/api/v1/runs/${run.runId}/artifacts/notes.txt`);
    expect(await notes.text()).toBe('second version');
    expect((await call('GET', `/api/v1/runs/${run.runId}/artifacts/missing`)).status).toBe(404);
  });

  it('moves the graph on after a report; the downstream claim lists the upstream manifest', async () => {
    const { tag, cmd } = fresh();
    const graphId = await createGraph([cmd('build'), cmd('test', { needs: ['build'] })]);
    const minion = await register([tag]);
    const build = await claimRun(minion.credential);
    expect(build.label).toBe('build');
    expect((await claim(minion.credential)).status).toBe(204);

    const { queue } = await json<Queue>(await call('GET', '/api/v1/queue', { token: operator }));
    expect(queue.find((q) => q.tags.includes(tag))).toBeUndefined();

    const report = await minionCall('POST', `/runs/${build.runId}/report`, {
      token: minion.credential,
      json: { result: 'success', exitCode: 0 },
    });
    expect(report.status).toBe(200);
    const manifestUrl = `http://localhost/api/v1/runs/${build.runId}/manifest`;
    expect(await report.json()).toEqual({ manifestUrl });
    const again = await minionCall('POST', `/runs/${build.runId}/report`, {
      token: minion.credential,
      json: { result: 'failure' },
    });
    expect(again.status).toBe(409);

    const { queue: pending } = await json<Queue>(
      await call('GET', '/api/v1/queue', { token: operator }),
    );
    expect(pending.find((q) => q.tags.includes(tag))).toEqual({
      tags: [tag],
      trust: 'trusted',
      pending: 1,
    });
    const test = await claimRun(minion.credential);
    expect(test).toMatchObject({
      label: 'test',
      upstream: [{ label: 'build', runId: build.runId, manifestUrl }],
    });
    expect(await runOf(build.runId)).toMatchObject({
      id: build.runId,
      label: 'build',
      state: 'done',
      result: 'success',
      exitCode: 0,
      manifestUrl,
    });
    const status = await json<GraphBody>(await call('GET', `/api/v1/graphs/${graphId}`));
    expect(status.jobs.map((j) => [j.label, j.state, j.result])).toEqual([
      ['build', 'done', 'success'],
      ['test', 'running', null],
    ]);
    expect((await call('GET', '/api/v1/graphs/999999')).status).toBe(404);
  });

  it("refuses a report, log, heartbeat or artifact on another minion's run, changing nothing", async () => {
    const { tag, cmd } = fresh();
    await createGraph([cmd('build')]);
    const owner = await register([tag]);
    const intruder = await register([tag]);
    const run = await claimRun(owner.credential);
    const token = intruder.credential;
    const report = await minionCall('POST', `/runs/${run.runId}/report`, {
      token,
      json: { result: 'failure' },
    });
    expect(report.status).toBe(409);
    expect(await report.json()).toMatchObject({ error: 'conflict' });
    const log = await minionCall('POST', `/runs/${run.runId}/logs`, {
      token,
      json: { seq: 0, data: 'forged' },
    });
    expect(log.status).toBe(409);
    const beat = await minionCall('POST', `/runs/${run.runId}/heartbeat`, { token });
    expect(beat.status).toBe(409);
    const artifact = await minionCall('PUT', `/runs/${run.runId}/artifacts/x.txt`, {
      token,
      raw: 'forged',
    });
    expect(artifact.status).toBe(409);
    expect(await runOf(run.runId)).toMatchObject({ state: 'running', result: null });
    const chunks = await database.db.select().from(logChunks).where(eq(logChunks.runId, run.runId));
    expect(chunks).toEqual([]);
    expect((await json(await call('GET', `/api/v1/runs/${run.runId}/manifest`))).artifacts).toEqual(
      [],
    );
  });

  it('serves a large graph a page at a time, in label order, with counts of every job', async () => {
    const { cmd } = fresh();
    const labels = Array.from({ length: 25 }, (_, i) => `job-${String(i).padStart(2, '0')}`);
    const graphId = await createGraph([
      ...labels.map((label) => cmd(label)),
      job('Zeta', { kind: 'dummy' }),
      cmd('idle', { inactive: true }),
    ]);
    type Page = GraphBody & {
      counts: { jobs: number; states: Record<string, number>; results: Record<string, number> };
      next: string | null;
    };
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const query: string = after === null ? '?limit=10' : `?limit=10&after=${after}`;
      const page = await json<Page>(await call('GET', `/api/v1/graphs/${graphId}${query}`));
      expect(page.counts).toEqual({
        jobs: 27,
        states: { pending: 25, done: 1, inactive: 1 },
        results: { success: 1 },
      });
      seen.push(...page.jobs.map((j) => j.label));
      after = page.next;
      pages++;
    } while (after !== null);
    expect(pages).toBe(3);
    // Byte order, as labels sort everywhere in Tower: capitals first.
    expect(seen).toEqual(['Zeta', 'idle', ...labels].sort());
    expect(seen[0]).toBe('Zeta');

    const whole = await json<Page>(await call('GET', `/api/v1/graphs/${graphId}`));
    expect(whole.jobs).toHaveLength(27);
    expect(whole.next).toBeNull();
    for (const query of ['?limit=0', '?limit=5001', '?limit=ten']) {
      const refused = await call('GET', `/api/v1/graphs/${graphId}${query}`);
      expect(refused.status, query).toBe(400);
      expect(await messageOf(refused)).toBe('limit: must be a whole number from 1 to 5000');
    }
  });

  it('lists the minions a page at a time, by id', async () => {
    const { tag } = fresh();
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await register([tag], `pager-${i}`)).minionId);
    type Page = { minions: { id: number; name: string }[]; next: number | null };
    const first = await json<Page>(
      await call('GET', `/api/v1/minions?after=${ids[0]! - 1}&limit=3`, { token: operator }),
    );
    expect(first.minions.map((m) => m.id)).toEqual(ids.slice(0, 3));
    expect(first.next).toBe(ids[2]);
    const rest = await json<Page>(
      await call('GET', `/api/v1/minions?after=${first.next}&limit=3`, { token: operator }),
    );
    expect(rest.minions.map((m) => m.name)).toEqual(['pager-3', 'pager-4']);
    expect(rest.next).toBeNull();
    const refused = await call('GET', '/api/v1/minions?after=first', { token: operator });
    expect(refused.status).toBe(400);
    expect(await messageOf(refused)).toBe('after: must be a positive whole number');
  });

  it('answers invalid bodies with 400 and a message naming the field', async () => {
    const { tag, cmd } = fresh();
    await createGraph([cmd('build')]);
    const minion = await register([tag]);
    const run = await claimRun(minion.credential);
    const token = minion.credential;
    const cases: [string, string, Call, RegExp][] = [
      ['POST', '/register', { token: TOKEN, json: { name: 'x', tags: [] } }, /^tags: /],
      ['POST', '/register', { token: TOKEN, json: { name: 'x', tags: ['Linux'] } }, /^tags\.0: /],
      ['POST', '/register', { token: TOKEN, json: { tags: ['linux'] } }, /^name: /],
      [
        'POST',
        '/register',
        { token: TOKEN, json: { name: 'x', tags: ['linux'], trust: 'root' } },
        /^trust: /,
      ],
      ['POST', '/register', { token: TOKEN, raw: '{not json' }, /^body: is not JSON/],
      ['POST', '/claim', { token, json: { waitSeconds: 99 } }, /^waitSeconds: /],
      [
        'POST',
        `/runs/${run.runId}/heartbeat`,
        { token, json: { leaseSeconds: 5 } },
        /^leaseSeconds: /,
      ],
      ['POST', `/runs/${run.runId}/logs`, { token, json: { seq: -1, data: 'x' } }, /^seq: /],
      ['POST', `/runs/${run.runId}/logs`, { token, json: { seq: 0 } }, /^data: /],
      ['POST', `/runs/${run.runId}/report`, { token, json: { result: 'great' } }, /^result: /],
      [
        'POST',
        `/runs/${run.runId}/report`,
        { token, json: { result: 'failure', exitCode: 1.5 } },
        /^exitCode: /,
      ],
      ['POST', `/runs/${run.runId}/report`, { token, json: [] }, /^body: /],
      ['POST', '/runs/abc/report', { token, json: { result: 'success' } }, /^runId: /],
    ];
    for (const [method, path, options, message] of cases) {
      const response = await minionCall(method, path, options);
      expect(response.status, `${method} ${path}`).toBe(400);
      const body = await json(response);
      expect(body.error).toBe('invalid_request');
      expect(body.message).toMatch(message);
    }
    const huge = await minionCall('POST', `/runs/${run.runId}/logs`, {
      token,
      json: { seq: 0, data: 'x'.repeat(1024 * 1024 + 1) },
    });
    expect(huge.status).toBe(400);
    expect(await messageOf(huge)).toMatch(/^data: must be at most 1 MiB/);
    const tooLarge = await minionCall('POST', `/runs/${run.runId}/logs`, {
      token,
      json: { seq: 0, data: 'x'.repeat(4 * 1024 * 1024) },
    });
    expect(tooLarge.status).toBe(413);
    expect(await json(tooLarge)).toMatchObject({ error: 'payload_too_large' });
    expect(await runOf(run.runId)).toMatchObject({ state: 'running' });
  });

  it('expires a lapsed lease in the maintenance pass, and a waiting claim gets the retry', async () => {
    const { tag, cmd } = fresh();
    await createGraph([cmd('build', { retries: 1 })]);
    const lost = await register([tag]);
    const other = await register([tag]);
    const run = await claimRun(lost.credential);
    // Passes every 5 s, as the loop makes them, up to the end of the 120 s lease.
    for (let passed = 0; passed < 120; passed += 5) {
      expect(await tower.maintenance.tick()).toEqual({ expiredLeases: 0, timeouts: 0 });
      clock.advance(5);
    }

    clock.advance(1);
    const waiting = claim(other.credential, 5);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const ticked = Date.now();
    expect((await tower.maintenance.tick()).expiredLeases).toBe(1);
    const retry = await waiting;
    expect(Date.now() - ticked).toBeLessThan(2000);
    expect(retry.status).toBe(200);
    expect((await json(retry)).run).toMatchObject({
      jobId: run.jobId,
      attempt: 2,
      cause: 'auto-retry',
    });
    expect(await runOf(run.runId)).toMatchObject({
      state: 'done',
      result: 'exception',
      reason: 'claim-expired',
    });
    const stopped = await minionCall('POST', `/runs/${run.runId}/heartbeat`, {
      token: lost.credential,
    });
    expect(stopped.status).toBe(409);
    expect(await stopped.json()).toMatchObject({ error: 'stop' });
  });
});

function parseSse(text: string): { event: string; data: string }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      return { event, data };
    });
}
