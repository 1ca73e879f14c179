/**
 * A database outage the minions live through (issue 12, finding 14): runs
 * are claimed and heartbeating, their PostgreSQL server is stopped for
 * longer than the lease and started again. The runs are kept and finish
 * with their minions' own reports (one of them finished while the database
 * was down), and no minion's quarantine count moves.
 *
 * The server stopped is one of this file's own (the suite's shared server
 * serves the other test files meanwhile). Tower, the HTTP server and the
 * minion agent run in this process; the test makes the maintenance passes
 * itself, one after another as the loop would, so that the first pass after
 * the restart comes before any heartbeat can: the moment the old code ended
 * the run as `claim-expired`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/connection.js';
import { events, installations, logChunks, minions, repositories, runs } from '../src/db/schema.js';
import { createGitHubRepositoryAccess } from '../src/github/repository-access.js';
import { GRAPH_SPEC_VERSION } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { createTower, type Tower } from '../src/main.js';
import { createMinionAgent, type MinionAgent } from '../src/minions/agent.js';
import { createFileArtifactStore } from '../src/minions/artifact-store.js';
import { inProcessConfig } from './support/config.js';
import { job } from './support/graph-specs.js';
import {
  findPostgresBinaries,
  startPostgresServer,
  type PostgresServer,
} from './support/postgres-server.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

const TOKEN = 'registration-token-0123456789';
/** TOWER_LEASE_SECONDS at its minimum: an agent heartbeats every 3.3 s. */
const LEASE_SECONDS = 10;
/** Two and a half leases: every lease lapses while the database is down. */
const OUTAGE_MS = 25_000;
const logger = createLogger({ level: 'silent' });
const binaries = findPostgresBinaries();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(binaries === undefined)('a database outage the minions live through', () => {
  let postgres: PostgresServer;
  let database: Database;
  let sandbox: Sandbox;
  let tower: Tower;
  let http: ServerType;
  const agents: MinionAgent[] = [];
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tower-outage-'));
    postgres = await startPostgresServer(binaries!);
    database = await openDatabase({ kind: 'postgres', url: postgres.url });
    await database.migrate();
    sandbox = await startSandbox({ files: { 'README.md': 'outage\n' } });
    const late: { app?: Tower['app'] } = {};
    http = await new Promise<ServerType>((resolve) => {
      const s = serve(
        { fetch: (request) => late.app!.fetch(request), hostname: '127.0.0.1', port: 0 },
        () => resolve(s),
      );
    });
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    tower = await createTower({
      config: {
        ...inProcessConfig(undefined),
        minionTokens: { trusted: TOKEN },
        publicUrl: url,
        leaseSeconds: LEASE_SECONDS,
      },
      logger,
      database,
      artifacts: createFileArtifactStore(join(scratch, 'artifacts')),
      repositories: createGitHubRepositoryAccess({
        appId: sandbox.app.id,
        privateKey: sandbox.privateKey,
        baseUrl: sandbox.apiUrl,
        locate: async (id) =>
          id === sandbox.repository.id
            ? { fullName: sandbox.repository.fullName, installationId: sandbox.installation.id }
            : undefined,
      }),
    });
    late.app = tower.app;
    await database.db.insert(installations).values({
      id: sandbox.installation.id,
      accountLogin: 'acme',
      accountId: 1,
      accountType: 'Organization',
    });
    await database.db.insert(repositories).values({
      id: sandbox.repository.id,
      installationId: sandbox.installation.id,
      fullName: sandbox.repository.fullName,
    });
    // One minion for each job, so that each one's count is its own job's.
    for (const name of ['holder', 'finisher']) {
      const agent = createMinionAgent({
        server: url,
        workdir: join(scratch, name),
        name,
        register: (client) => client.register(TOKEN, { name, tags: [name], trust: 'trusted' }),
        concurrency: 1,
        logger,
        claimWaitSeconds: 1,
        isolation: { kind: 'none' },
      });
      await agent.start();
      agents.push(agent);
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((agent) => agent.stop(0)));
    await tower?.close();
    if (http) await new Promise((resolve) => http.close(resolve));
    await sandbox?.close();
    await database?.close();
    await postgres?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('keeps runs through a stop of their PostgreSQL server longer than the lease: they finish with their minions’ reports, and no quarantine count moves', async () => {
    const db = database.db;
    const [holder, finisher] = agents.map((agent) => agent.minionId) as [number, number];
    // Two exceptions counted already: one more (of the default three) would quarantine them.
    await db.update(minions).set({ consecutiveExceptions: 2 });
    const released = (label: string) => join(scratch, `release-${label}`);
    const waitsForRelease = (label: string) =>
      job(label, {
        requires: [label === 'hold' ? 'holder' : 'finisher'],
        command: `echo started; while [ ! -e '${released(label)}' ]; do sleep 0.2; done; echo released`,
      });
    const sha = await sandbox.sim.push(sandbox.repository, {
      branch: 'main',
      files: { 'CHANGELOG.md': 'outage\n' },
      message: 'Outage',
      author: 'acme-admin',
    });
    const [event] = await db
      .insert(events)
      .values({
        repositoryId: sandbox.repository.id,
        type: 'push',
        dedupKey: 'outage-1',
        sha,
        payload: {},
      })
      .returning({ id: events.id });
    const { graphId } = await tower.scheduler.createGraph({
      repositoryId: sandbox.repository.id,
      eventId: event!.id,
      spec: {
        version: GRAPH_SPEC_VERSION,
        graph: 'outage',
        event: { type: 'push', branch: 'main', sha, changedFiles: null },
        defines: {},
        // `finish` ends while the database is down; `hold` after it is back.
        jobs: [waitsForRelease('finish'), waitsForRelease('hold')],
      },
      trust: 'trusted',
    });
    const runsOf = async (minionId: number) =>
      (
        await db
          .select({ run: runs })
          .from(runs)
          .where(eq(runs.minionId, minionId))
          .orderBy(asc(runs.id))
      ).map((row) => row.run);
    const started = (minionId: number) =>
      waitFor(`minion ${minionId}'s run to start`, async () => {
        const [first] = await runsOf(minionId);
        if (!first) return undefined;
        const chunks = await db
          .select({ data: logChunks.data })
          .from(logChunks)
          .where(and(eq(logChunks.runId, first.id)));
        return chunks.some((chunk) => chunk.data.includes('started')) ? first : undefined;
      });
    const hold = await started(holder);
    const finish = await started(finisher);
    expect(await tower.maintenance.tick()).toEqual({ expiredLeases: 0, timeouts: 0 });

    // The database goes away for two and a half leases; the passes meanwhile fail.
    // Halfway through, `finish` ends: its minion reports once the database is back.
    await postgres.halt();
    const stopped = Date.now();
    while (Date.now() - stopped < OUTAGE_MS) {
      await expect(tower.maintenance.tick()).rejects.toThrow();
      if (Date.now() - stopped > OUTAGE_MS / 2) await writeFile(released('finish'), '');
      await sleep(1000);
    }
    await postgres.restart();
    const back = Date.now();

    // The first passes that reach it again find both leases lapsed long ago, and keep
    // them: until a whole lease after the database came back, and after that too, since
    // the minions have heartbeated (or reported) meanwhile.
    const passes: { expiredLeases: number; timeouts: number }[] = [];
    while (Date.now() - back < (LEASE_SECONDS + 3) * 1000) {
      try {
        passes.push(await tower.maintenance.tick());
      } catch {
        // A connection the restart broke; the next pass opens a new one.
      }
      await sleep(250);
    }
    expect(passes.length).toBeGreaterThan(0);
    expect(passes.filter((pass) => pass.expiredLeases > 0)).toEqual([]);
    const [kept, ...others] = await runsOf(holder);
    expect(others).toEqual([]);
    expect(kept).toMatchObject({ id: hold.id, state: 'running', result: null });
    expect(kept!.leaseExpiresAt!.getTime()).toBeGreaterThan(back);
    const [holding] = await db.select().from(minions).where(eq(minions.id, holder));
    expect(holding).toMatchObject({ state: 'active', consecutiveExceptions: 2 });
    const reported = await waitFor('the report of the run that ended in the outage', async () => {
      const [only, ...more] = await runsOf(finisher);
      return only?.state === 'done' && more.length === 0 ? only : undefined;
    });
    expect(reported).toMatchObject({ id: finish.id, result: 'success', reason: null, exitCode: 0 });

    // Released, `hold` ends and its minion reports it.
    await writeFile(released('hold'), '');
    const done = await waitFor('the run to be reported', async () => {
      const [only] = await runsOf(holder);
      return only?.state === 'done' ? only : undefined;
    });
    expect(done).toMatchObject({ id: hold.id, result: 'success', reason: null, exitCode: 0 });
    const status = (await tower.scheduler.graphStatus({ graphId }))!;
    expect(status.graph).toMatchObject({ state: 'done', result: 'success' });
    expect(status.jobs.map((j) => j.runs.length)).toEqual([1, 1]);
    // Their own reports, successes, are what reset the counts.
    expect(await db.select().from(minions).orderBy(asc(minions.id))).toMatchObject([
      { id: holder, state: 'active', consecutiveExceptions: 0 },
      { id: finisher, state: 'active', consecutiveExceptions: 0 },
    ]);
  }, 240_000);
});
