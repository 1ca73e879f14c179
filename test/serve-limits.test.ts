/**
 * Issue 12's limits on a real `tower serve` process on PostgreSQL: a 200 MiB
 * log read ten times at once with the server's memory bounded, and SIGTERM
 * with log followers and a waiting claim open.
 */
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/connection.js';
import { installations, repositories } from '../src/db/schema.js';
import { systemClock } from '../src/lib/clock.js';
import { GRAPH_SPEC_VERSION } from '../src/lib/graph-spec.js';
import { createScheduler } from '../src/scheduler/scheduler.js';
import { createPostgresDatabase, dropPostgresDatabase, hasPostgres } from './support/databases.js';
import { insertEvent } from './support/fixtures.js';
import { job } from './support/graph-specs.js';
import { freePort } from './support/postgres-server.js';
import { baseEnv, runTower, waitForHealthy, type TowerProcess } from './support/processes.js';

const TOKEN = 'registration-token-0123456789';
const MIB = 1024 * 1024;

describe.skipIf(!hasPostgres())('tower serve limits on PostgreSQL', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A server on a fresh database, and a run of it running on a registered minion. */
  async function serverWithRun(): Promise<{
    tower: TowerProcess;
    url: string;
    database: Database;
    runId: number;
  }> {
    const databaseUrl = await createPostgresDatabase();
    const database = await openDatabase({ kind: 'postgres', url: databaseUrl });
    cleanups.push(async () => {
      await database.close();
      await dropPostgresDatabase(databaseUrl);
    });
    await database.db
      .insert(installations)
      .values({ id: 1, accountLogin: 'octo-org', accountId: 7, accountType: 'Organization' });
    await database.db
      .insert(repositories)
      .values({ id: 10, installationId: 1, fullName: 'octo-org/app' });
    const scheduler = createScheduler({ db: database.db, clock: systemClock });
    await scheduler.createGraph({
      repositoryId: 10,
      eventId: await insertEvent(database.db, 'd'.repeat(40)),
      spec: {
        version: GRAPH_SPEC_VERSION,
        graph: 'limits',
        event: { type: 'push', branch: 'main', sha: 'd'.repeat(40), changedFiles: null },
        defines: {},
        jobs: [job('build', { requires: ['limits'] })],
      },
      trust: 'trusted',
    });

    const cwd = await mkdtemp(join(tmpdir(), 'tower-serve-limits-'));
    const port = await freePort();
    const tower = runTower(['serve'], {
      cwd,
      env: baseEnv({
        DATABASE_URL: databaseUrl,
        TOWER_PORT: String(port),
        TOWER_MINION_TOKEN: TOKEN,
        TOWER_EMBEDDED_MINION: 'false',
        TOWER_SANDBOX: 'false',
        TOWER_LOG_LEVEL: 'warn',
      }),
    });
    cleanups.push(async () => {
      await tower.stop('SIGKILL');
      await rm(cwd, { recursive: true, force: true });
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForHealthy(tower, url);
    const minion = await register(url, 'limits');
    const claimed = await fetch(`${url}/api/v1/minion/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${minion}`, 'content-type': 'application/json' },
      body: JSON.stringify({ waitSeconds: 0 }),
    });
    expect(claimed.status).toBe(200);
    const { run } = (await claimed.json()) as { run: { runId: number } };
    return { tower, url, database, runId: run.runId };
  }

  async function register(url: string, tag: string): Promise<string> {
    const response = await fetch(`${url}/api/v1/minion/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'limits', tags: [tag] }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { credential: string }).credential;
  }

  /** The resident memory of a process, in bytes (Linux). */
  async function rss(pid: number): Promise<number> {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
  }

  it.skipIf(process.platform !== 'linux')(
    "serves a 200 MiB log to ten readers at once with the server's memory bounded",
    async () => {
      const { tower, url, database, runId } = await serverWithRun();
      // 200 chunks of 1 MiB, the most a chunk may hold, written by the database itself.
      await database.db.execute(sql`
        insert into log_chunks (run_id, seq, data)
        select ${runId}, g, repeat(md5(g::text), 32768) from generate_series(0, 199) g`);
      const logUrl = `${url}/api/v1/runs/${runId}/log`;
      const pid = tower.child.pid!;
      const before = await rss(pid);
      let peak = before;
      const sampler = setInterval(() => {
        void rss(pid).then(
          (now) => (peak = Math.max(peak, now)),
          () => undefined,
        );
      }, 50);
      try {
        const sizes = await Promise.all(
          Array.from({ length: 10 }, async () => {
            const response = await fetch(logUrl);
            expect(response.status).toBe(200);
            let size = 0;
            for await (const part of response.body!) size += (part as Uint8Array).byteLength;
            return size;
          }),
        );
        expect(sizes).toEqual(sizes.map(() => 200 * MIB));
      } finally {
        clearInterval(sampler);
      }
      // Whole logs in memory would need 2 GB (and the 1 GiB heap `npm start` gives ends first).
      expect(peak - before).toBeLessThan(150 * 1000 * 1000);
      expect(await tower.stop('SIGTERM')).toBe(0);
    },
    // Two gigabytes through PostgreSQL and HTTP: about a minute on a loaded two-core machine.
    150_000,
  );

  it('exits within 10 s of SIGTERM with five log followers and a waiting claim open', async () => {
    const { tower, url, runId } = await serverWithRun();
    const followers = await Promise.all(
      Array.from({ length: 5 }, () => fetch(`${url}/api/v1/runs/${runId}/log?follow=1`)),
    );
    expect(followers.map((f) => f.status)).toEqual([200, 200, 200, 200, 200]);
    // Read as they come, as a browser does.
    const reading = followers.map((f) => f.text().catch(() => ''));
    const idle = await register(url, 'nothing-to-do');
    const claim = fetch(`${url}/api/v1/minion/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${idle}`, 'content-type': 'application/json' },
      body: JSON.stringify({ waitSeconds: 20 }),
    });
    // The claim is in: a second minion's request answered after it was sent.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await tower.stop('SIGTERM', 10_000)).toBe(0);
    expect((await claim.catch(() => undefined))?.status ?? 'closed').not.toBe(200);
    await Promise.all(reading);
  }, 60_000);
});
