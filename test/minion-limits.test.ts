/**
 * Issue 12's limits on the minion protocol and the log reads, in process on
 * both backends: the per-run log cap, logs read a page at a time, per-client
 * caps on log followers and per-minion caps on waiting claims, shutdown
 * ending both at once, and artifacts frozen once their run reports.
 */
import { mkdtemp, rm, mkdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../src/db/schema.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { createTower, type Tower } from '../src/main.js';
import { createFileArtifactStore } from '../src/minions/artifact-store.js';
import type { ClaimedRun } from '../src/minions/protocol.js';
import { DEFAULT_MAX_FOLLOWERS_PER_CLIENT } from '../src/minions/reads.js';
import { LOG_NOTE_ROOM_BYTES, logTruncatedNote } from '../src/minions/schemas.js';
import { matchArtifacts } from '../src/minions/workspace.js';
import { inProcessConfig } from './support/config.js';
import { backends, type TestDatabase } from './support/databases.js';
import { insertEvent, insertRepositoryFixture } from './support/fixtures.js';
import { job } from './support/graph-specs.js';

const TOKEN = 'registration-token-0123456789';
const logger = createLogger({ level: 'silent' });
/** A small cap, so that the test reaches it with a few chunks. */
const LOG_MAX = 8192;

type Body = string | Uint8Array | ReadableStream<Uint8Array>;
/** The default: an agent runs at most 64 jobs at once, each with a claim open. */
const MAX_CLAIMS = 64;

function graphSpec(jobs: JobSpec[]): GraphSpec {
  return {
    version: GRAPH_SPEC_VERSION,
    graph: 'limits',
    event: { type: 'push', branch: 'main', sha: 'c'.repeat(40), changedFiles: null },
    defines: {},
    jobs,
  };
}

describe.each(backends())('minion limits on $name', (backend) => {
  let database: TestDatabase;
  let artifactsDir: string;
  const towers: Tower[] = [];
  let tower: Tower;
  let tagCounter = 0;

  async function newTower(limits: { maxClaimsPerMinion?: number } = {}) {
    const made = await createTower({
      limits,
      config: {
        ...inProcessConfig(undefined),
        minionTokens: { trusted: TOKEN },
        logMaxBytes: LOG_MAX,
      },
      logger,
      database,
      artifacts: createFileArtifactStore(artifactsDir),
    });
    towers.push(made);
    return made;
  }

  beforeAll(async () => {
    database = await backend.open();
    artifactsDir = await mkdtemp(join(tmpdir(), 'tower-limits-'));
    await insertRepositoryFixture(database.db);
    tower = await newTower();
  });
  afterAll(async () => {
    for (const made of towers) await made.close();
    await database.dispose();
    await rm(artifactsDir, { recursive: true, force: true });
  });

  async function call(
    method: string,
    path: string,
    options: { token?: string; json?: unknown; body?: Body; signal?: AbortSignal } = {},
    on: Tower = tower,
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    return on.app.request(path, {
      method,
      headers,
      body: body ?? null,
      ...(options.signal ? { signal: options.signal } : {}),
      // A streamed body must say so to the Request it becomes.
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    });
  }

  /** A running run of a job with a tag of its own, and its minion's credential. */
  async function runningRun(on: Tower = tower) {
    const tag = `limits-${++tagCounter}`;
    await on.scheduler.createGraph({
      repositoryId: 10,
      eventId: await insertEvent(database.db, 'c'.repeat(40)),
      spec: graphSpec([job('build', { requires: [tag] })]),
      trust: 'trusted',
    });
    const credential = await register(tag, on);
    const claimed = await call(
      'POST',
      '/api/v1/minion/claim',
      { token: credential, json: { waitSeconds: 0 } },
      on,
    );
    expect(claimed.status).toBe(200);
    const { run } = (await claimed.json()) as { run: ClaimedRun };
    return { run, credential, tag };
  }

  async function register(tag: string, on: Tower = tower) {
    const response = await call(
      'POST',
      '/api/v1/minion/register',
      { token: TOKEN, json: { name: 'limits', tags: [tag] } },
      on,
    );
    expect(response.status).toBe(201);
    return ((await response.json()) as { credential: string }).credential;
  }

  const logBytes = async (runId: number) =>
    (await database.db.select({ b: runs.logBytes }).from(runs).where(eq(runs.id, runId)))[0]!.b;

  it('refuses log past the per-run cap with 413, counts a re-sent chunk once, and keeps room for the note', async () => {
    const { run, credential } = await runningRun();
    const append = (seq: number, data: string) =>
      call('POST', `/api/v1/minion/runs/${run.runId}/logs`, {
        token: credential,
        json: { seq, data },
      });
    const ordinary = LOG_MAX - LOG_NOTE_ROOM_BYTES;
    expect((await append(0, 'a'.repeat(4000))).status).toBe(204);
    // Re-sent (the answer was lost): stored once, counted once.
    expect((await append(0, 'a'.repeat(4000))).status).toBe(204);
    expect(await logBytes(run.runId)).toBe(4000);

    const over = await append(1, 'b'.repeat(ordinary - 4000 + 1));
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({
      error: 'payload_too_large',
      message: expect.stringContaining(`at most ${LOG_MAX} bytes of log (TOWER_LOG_MAX_BYTES)`),
    });
    // Multi-byte characters count as their UTF-8 bytes.
    expect((await append(1, 'é'.repeat((ordinary - 4000) / 2))).status).toBe(204);
    expect(await logBytes(run.runId)).toBe(ordinary);
    expect((await append(2, 'c')).status).toBe(413);
    // The note alone goes into the room kept for it.
    const note = logTruncatedNote(ordinary);
    expect((await append(2, note)).status).toBe(204);
    expect(await logBytes(run.runId)).toBe(ordinary + Buffer.byteLength(note));
    const log = await (await call('GET', `/api/v1/runs/${run.runId}/log`)).text();
    expect(log).toBe('a'.repeat(4000) + 'é'.repeat((ordinary - 4000) / 2) + note);
  });

  it('serves a log of many chunks whole, in order, read a page at a time', async () => {
    const { run, credential } = await runningRun();
    const chunks = Array.from({ length: 11 }, (_, seq) => `chunk ${seq}\n`);
    // Sent out of order: the log is in sequence order.
    for (const seq of [3, 0, 1, 2, 10, 4, 5, 6, 7, 8, 9]) {
      const sent = await call('POST', `/api/v1/minion/runs/${run.runId}/logs`, {
        token: credential,
        json: { seq, data: chunks[seq] },
      });
      expect(sent.status).toBe(204);
    }
    const whole = await call('GET', `/api/v1/runs/${run.runId}/log`);
    expect(whole.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await whole.text()).toBe(chunks.join(''));
    expect(await (await call('GET', '/api/v1/runs/999999/log')).json()).toMatchObject({
      error: 'not_found',
    });
  });

  it(`lets one client follow at most ${DEFAULT_MAX_FOLLOWERS_PER_CLIENT} logs at once, answering 429 past that`, async () => {
    const { run } = await runningRun();
    const open = Array.from(
      { length: DEFAULT_MAX_FOLLOWERS_PER_CLIENT },
      () => new AbortController(),
    );
    const followers = await Promise.all(
      open.map((reader) =>
        call('GET', `/api/v1/runs/${run.runId}/log?follow=1`, { signal: reader.signal }),
      ),
    );
    expect(followers.map((f) => f.status)).toEqual(followers.map(() => 200));
    const refused = await call('GET', `/api/v1/runs/${run.runId}/log?follow=1`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toEqual({
      error: 'too_many_requests',
      message: expect.stringContaining(`follows ${DEFAULT_MAX_FOLLOWERS_PER_CLIENT} logs already`),
    });
    // Reading the whole log is not following it.
    expect((await call('GET', `/api/v1/runs/${run.runId}/log`)).status).toBe(200);
    // One reader leaves: another may follow.
    await followers[0]!.body!.cancel();
    await expect
      .poll(async () => {
        const again = await call('GET', `/api/v1/runs/${run.runId}/log?follow=1`);
        await again.body?.cancel();
        return again.status;
      })
      .toBe(200);
    for (const follower of followers.slice(1)) await follower.body!.cancel();
  });

  it(`lets one minion have at most ${MAX_CLAIMS} claims open at once, answering 429 past that`, async () => {
    const tag = `limits-${++tagCounter}`;
    const credential = await register(tag);
    const hangUp = new AbortController();
    const claim = (waitSeconds: number, signal?: AbortSignal) =>
      call('POST', '/api/v1/minion/claim', {
        token: credential,
        json: { waitSeconds },
        ...(signal ? { signal } : {}),
      });
    // One more than a minion may have: the one refused answers at once, the others wait.
    const claims = Array.from({ length: MAX_CLAIMS + 1 }, () => claim(20, hangUp.signal));
    const refused = await Promise.race(claims);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toEqual({
      error: 'too_many_requests',
      message: expect.stringContaining(`has ${MAX_CLAIMS} claims open already`),
    });
    hangUp.abort();
    const statuses = (await Promise.all(claims)).map((response) => response.status);
    expect(statuses.filter((status) => status === 204)).toHaveLength(MAX_CLAIMS);
    // Their places are free again.
    expect((await claim(0)).status).toBe(204);
  });

  it('ends log followers and waiting claims at once when shutdown begins, and refuses new claims with 503', async () => {
    const own = await newTower({ maxClaimsPerMinion: 1 });
    const { run } = await runningRun(own);
    const tag = `limits-${++tagCounter}`;
    const credential = await register(tag, own);
    const followers = await Promise.all(
      Array.from({ length: 5 }, () =>
        call('GET', `/api/v1/runs/${run.runId}/log?follow=1`, {}, own),
      ),
    );
    const claimOf = (waitSeconds: number) =>
      call('POST', '/api/v1/minion/claim', { token: credential, json: { waitSeconds } }, own);
    // The minion may have one claim open: of two, one is refused at once and the other waits.
    const claims = [claimOf(20), claimOf(20)];
    expect((await Promise.race(claims)).status).toBe(429);
    await own.beginShutdown();
    // Both end without a wait of their own (20 s for the claim, for ever for a follower).
    expect((await Promise.all(claims)).map((response) => response.status).sort()).toEqual([
      204, 429,
    ]);
    for (const follower of followers) expect(await follower.text()).toBe('');
    const late = await claimOf(20);
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('5');
    expect(await late.json()).toMatchObject({ error: 'shutting_down' });
  });

  it('refuses an artifact upload that finishes after its run reported, and keeps the manifest as it was', async () => {
    const { run, credential } = await runningRun();
    const put = (name: string, body: Body) =>
      call('PUT', `/api/v1/minion/runs/${run.runId}/artifacts/${name}`, {
        token: credential,
        body,
      });
    expect((await put('result.txt', 'reported bytes')).status).toBe(201);

    // Two uploads start while the run is running, and finish after its report.
    const late = ['result.txt', 'extra.txt'].map((name) => {
      let reading!: () => void;
      let finish!: () => void;
      const started = new Promise<void>((resolve) => (reading = resolve));
      const finished = new Promise<void>((resolve) => (finish = resolve));
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent) {
            await finished;
            controller.close();
            return;
          }
          sent = true;
          controller.enqueue(new TextEncoder().encode('late bytes'));
          reading();
        },
      });
      return { response: put(name, body), started, finish };
    });
    // Both passed the check made before the body is read, and are streaming.
    await Promise.all(late.map((upload) => upload.started));
    const report = await call('POST', `/api/v1/minion/runs/${run.runId}/report`, {
      token: credential,
      json: { result: 'success', exitCode: 0 },
    });
    expect(report.status).toBe(200);
    for (const upload of late) upload.finish();
    for (const upload of late) {
      const response = await upload.response;
      expect(response.status).toBe(409);
      expect(((await response.json()) as { message: string }).message).toContain(
        'its artifacts are frozen',
      );
    }
    const manifest = (await (await call('GET', `/api/v1/runs/${run.runId}/manifest`)).json()) as {
      artifacts: { name: string; size: number }[];
    };
    expect(manifest.artifacts.map((a) => [a.name, a.size])).toEqual([['result.txt', 14]]);
    const served = await call('GET', `/api/v1/runs/${run.runId}/artifacts/result.txt`);
    expect(await served.text()).toBe('reported bytes');
    // And a new upload after the report is refused before its body is read.
    expect((await put('after.txt', 'x')).status).toBe(409);
  });
});

describe('artifact globs', () => {
  it('never leave the workspace through a symbolic link in a glob’s base, or through ..', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'tower-globs-'));
    try {
      const root = join(scratch, 'workspace');
      const otherRun = join(scratch, 'other-run');
      await mkdir(join(root, 'dist'), { recursive: true });
      await mkdir(join(otherRun, 'secrets'), { recursive: true });
      await writeFile(join(root, 'dist/app.txt'), 'mine');
      await writeFile(join(otherRun, 'secrets/token.txt'), 'another run’s');
      // A job links its artifact directories out of its workspace.
      await symlink('/etc', join(root, 'out'));
      await symlink(otherRun, join(root, 'neighbour'));
      const found = await matchArtifacts(root, [
        'dist/**',
        'out/**',
        'out/ssl/**',
        'neighbour/secrets/**',
        'neighbour/**',
        '../other-run/**',
        '**/token.txt',
      ]);
      expect(found.map((f) => f.name)).toEqual(['dist/app.txt']);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
