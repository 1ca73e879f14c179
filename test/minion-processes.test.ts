/**
 * Issue 5's acceptance with real processes on a real PostgreSQL: `tower
 * serve` servers, `tower minion` agents checking out commits of the GitHub
 * simulator through installation tokens, and SIGKILL where machines die.
 */
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/connection.js';
import { events, installations, repositories } from '../src/db/schema.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { systemClock } from '../src/lib/clock.js';
import { createMinionClient, type MinionClient } from '../src/minions/agent-client.js';
import { createPostgresNotifier, type Notifier } from '../src/minions/notifier.js';
import { createScheduler, type Scheduler } from '../src/scheduler/scheduler.js';
import { createPostgresDatabase, dropPostgresDatabase, hasPostgres } from './support/databases.js';
import { job } from './support/graph-specs.js';
import { freePort } from './support/postgres-server.js';
import { baseEnv, runTower, waitForHealthy, type TowerProcess } from './support/processes.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

const TOKEN = 'registration-token-0123456789';
const logger = createLogger({ level: 'silent' });

type RunView = {
  id: number;
  state: string;
  result: string | null;
  reason: string | null;
  minionId: number | null;
};
type GraphView = {
  graph: { state: string; result: string | null };
  jobs: {
    label: string;
    state: string;
    result: string | null;
    reason: string | null;
    retriesUsed: number;
    runs: RunView[];
  }[];
};

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(!hasPostgres())('minions as processes on PostgreSQL', () => {
  let sandbox: Sandbox;
  let sha: string;
  let scratch: string;
  const processes: TowerProcess[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tower-processes-'));
    // The minions' run users (src/minions/isolation.ts) reach their run directories through it.
    await chmod(scratch, 0o711);
    sandbox = await startSandbox({
      files: {
        VERSION: '2.0.0\n',
        'build.sh':
          'mkdir -p dist && echo "built $(cat VERSION)" > dist/app.txt && echo build ok\n',
        'check.mjs': [
          'import { readFileSync } from "node:fs";',
          'const manifests = JSON.parse(readFileSync(process.env.TOWER_UPSTREAM_MANIFESTS, "utf8"));',
          'const entry = manifests.build.artifacts.find((a) => a.name === "dist/app.txt");',
          'const body = await (await fetch(entry.url)).text();',
          'console.log(`chunk ${process.env.TOWER_CHUNK}/${process.env.TOWER_CHUNKS} saw ${body.trim()}`);',
          '',
        ].join('\n'),
      },
    });
    sha = await sandbox.sim.push(sandbox.repository, {
      branch: 'main',
      files: { 'NOTES.md': 'release\n' },
      author: 'acme-admin',
    });
  });

  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop('SIGKILL')));
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(async () => {
    await sandbox?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  /** A fresh database with the repository Tower would have learnt of from its installation webhook. */
  async function freshDatabase(): Promise<{ url: string; database: Database }> {
    const url = await createPostgresDatabase();
    const database = await openDatabase({ kind: 'postgres', url });
    cleanups.push(async () => {
      await database.close();
      await dropPostgresDatabase(url);
    });
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
    return { url, database };
  }

  /** The scheduler as a server replica has it: its commits wake waiting claims on every replica. */
  function schedulerOn(database: Database): Scheduler {
    const notifier: Notifier = createPostgresNotifier({ db: database.db, logger });
    cleanups.push(() => notifier.close());
    return createScheduler({
      db: database.db,
      clock: systemClock,
      onClaimable: (keys) => notifier.notify(keys),
    });
  }

  async function createGraph(
    database: Database,
    scheduler: Scheduler,
    name: string,
    jobs: JobSpec[],
  ) {
    const [event] = await database.db
      .insert(events)
      .values({
        repositoryId: sandbox.repository.id,
        type: 'push',
        dedupKey: `${name}-${Math.random()}`,
        sha,
        payload: {},
      })
      .returning({ id: events.id });
    const spec: GraphSpec = {
      version: GRAPH_SPEC_VERSION,
      graph: name,
      event: { type: 'push', branch: 'main', sha, changedFiles: null },
      defines: {},
      jobs: [...jobs].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)),
    };
    const { graphId } = await scheduler.createGraph({
      repositoryId: sandbox.repository.id,
      eventId: event!.id,
      spec,
      trust: 'trusted',
    });
    return graphId;
  }

  async function startServer(
    databaseUrl: string,
    port: number,
    extra: Record<string, string> = {},
  ) {
    const cwd = await mkdtemp(join(scratch, 'server-'));
    const server = runTower(['serve'], {
      cwd,
      env: baseEnv({
        DATABASE_URL: databaseUrl,
        TOWER_PORT: String(port),
        TOWER_PUBLIC_URL: `http://127.0.0.1:${port}`,
        TOWER_APP_ID: String(sandbox.app.id),
        TOWER_PRIVATE_KEY: sandbox.privateKey,
        TOWER_WEBHOOK_SECRET: 'process-test-secret',
        TOWER_GITHUB_API_URL: sandbox.apiUrl,
        TOWER_MINION_TOKEN: TOKEN,
        TOWER_EMBEDDED_MINION: 'false',
        TOWER_LOG_LEVEL: 'warn',
        ...extra,
      }),
    });
    processes.push(server);
    await waitForHealthy(server, `http://127.0.0.1:${port}`);
    return server;
  }

  async function startMinion(
    serverUrl: string,
    tag: string,
    options: { concurrency?: number } = {},
  ) {
    const workdir = await mkdtemp(join(scratch, 'minion-'));
    const minion = runTower(
      [
        'minion',
        '--server',
        serverUrl,
        '--token',
        TOKEN,
        '--tags',
        `linux,${tag}`,
        '--workdir',
        workdir,
        '--concurrency',
        String(options.concurrency ?? 1),
        '--log-level',
        'warn',
      ],
      { cwd: scratch, env: baseEnv({}) },
    );
    processes.push(minion);
    const identity = await waitFor(
      'the minion to register',
      async () =>
        JSON.parse(await readFile(join(workdir, 'minion.json'), 'utf8')) as { minionId: number },
    );
    return { process: minion, workdir, minionId: identity.minionId };
  }

  const graphOf = async (serverUrl: string, graphId: number) =>
    (await (await fetch(`${serverUrl}/api/v1/graphs/${graphId}`)).json()) as GraphView;

  const settled = (serverUrl: string, graphId: number, ms?: number) =>
    waitFor(
      `graph ${graphId} to finish`,
      async () => {
        const view = await graphOf(serverUrl, graphId);
        return view.graph.state === 'done' ? view : undefined;
      },
      ms,
    );

  it('runs a graph with dependencies, chunks and artifacts on two minion processes', async () => {
    const { url, database } = await freshDatabase();
    const port = await freePort();
    const server = `http://127.0.0.1:${port}`;
    await startServer(url, port);
    const scheduler = schedulerOn(database);
    const tag = 'e2e';
    const [first, second] = [await startMinion(server, tag), await startMinion(server, tag)];
    const chunk = (index: number) =>
      job(`check/${index}`, {
        requires: [tag],
        command: 'node check.mjs',
        dependencies: [{ job: 'build', results: ['success', 'warning'] }],
        chunk: { index, count: 2 },
      });
    const graphId = await createGraph(database, scheduler, 'e2e', [
      job('build', { requires: [tag], command: 'bash build.sh', artifacts: ['dist/**'] }),
      chunk(1),
      chunk(2),
    ]);
    const done = await settled(server, graphId);
    expect(done.graph.result).toBe('success');
    const byLabel = new Map(done.jobs.map((j) => [j.label, j]));
    const build = byLabel.get('build')!.runs[0]!;
    const manifest = (await (await fetch(`${server}/api/v1/runs/${build.id}/manifest`)).json()) as {
      artifacts: { name: string; url: string }[];
    };
    expect(manifest.artifacts.map((a) => a.name)).toEqual(['dist/app.txt']);
    expect(await (await fetch(manifest.artifacts[0]!.url)).text()).toBe('built 2.0.0\n');
    expect(await (await fetch(`${server}/api/v1/runs/${build.id}/log`)).text()).toContain(
      'build ok',
    );
    for (const index of [1, 2]) {
      const run = byLabel.get(`check/${index}`)!.runs[0]!;
      expect(await (await fetch(`${server}/api/v1/runs/${run.id}/log`)).text()).toContain(
        `chunk ${index}/2 saw built 2.0.0`,
      );
    }
    const ran = new Set(done.jobs.flatMap((j) => j.runs.map((r) => r.minionId)));
    expect([...ran].every((id) => id === first.minionId || id === second.minionId)).toBe(true);
  }, 60_000);

  it('retries the run of a minion killed with SIGKILL elsewhere, up to the retries', async () => {
    const { url, database } = await freshDatabase();
    const port = await freePort();
    const server = `http://127.0.0.1:${port}`;
    await startServer(url, port, { TOWER_LEASE_SECONDS: '10' });
    const scheduler = schedulerOn(database);
    const tag = 'killed';
    // The first attempt records its process group, so the test can end what SIGKILL orphans.
    const command =
      'if [ "$TOWER_ATTEMPT" = 1 ]; then echo $$ > "$TMPDIR/pgid-$TOWER_JOB"; echo started; sleep 300; fi; echo attempt $TOWER_ATTEMPT';
    const graphId = await createGraph(database, scheduler, 'killed', [
      job('sturdy', { requires: [tag], retries: 1, command }),
      job('fragile', { requires: [tag], retries: 0, command }),
    ]);
    const doomed = await startMinion(server, tag, { concurrency: 2 });
    cleanups.push(async () => {
      const runs = await readdir(join(doomed.workdir, 'runs')).catch(() => []);
      for (const file of runs.flatMap((run) =>
        ['sturdy', 'fragile'].map((label) =>
          join(doomed.workdir, 'runs', run, 'tmp', `pgid-${label}`),
        ),
      )) {
        const pgid = Number(await readFile(file, 'utf8').catch(() => '0'));
        if (pgid > 0) {
          try {
            process.kill(-pgid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    });
    await waitFor('both first runs to start', async () => {
      const view = await graphOf(server, graphId);
      return view.jobs.every((j) => j.state === 'running') ? true : undefined;
    });
    await waitFor('both commands to print', async () => {
      const view = await graphOf(server, graphId);
      const logs = await Promise.all(
        view.jobs.map(async (j) =>
          (await fetch(`${server}/api/v1/runs/${j.runs[0]!.id}/log`)).text(),
        ),
      );
      return logs.every((log) => log.includes('started')) ? true : undefined;
    });
    await doomed.process.stop('SIGKILL');
    const rescuer = await startMinion(server, tag);
    const done = await settled(server, graphId);
    const byLabel = new Map(done.jobs.map((j) => [j.label, j]));
    const sturdy = byLabel.get('sturdy')!;
    expect(sturdy).toMatchObject({ state: 'done', result: 'success', retriesUsed: 1 });
    expect(sturdy.runs.map((r) => [r.result, r.reason, r.minionId])).toEqual([
      ['exception', 'claim-expired', doomed.minionId],
      ['success', null, rescuer.minionId],
    ]);
    const fragile = byLabel.get('fragile')!;
    expect(fragile).toMatchObject({ result: 'exception', reason: 'claim-expired' });
    expect(fragile.runs).toHaveLength(1);
  }, 120_000);

  it('finishes a graph after the server is killed with SIGKILL mid-graph and restarted', async () => {
    const { url, database } = await freshDatabase();
    const port = await freePort();
    const server = `http://127.0.0.1:${port}`;
    const env = { TOWER_LEASE_SECONDS: '60' };
    const first = await startServer(url, port, env);
    const scheduler = schedulerOn(database);
    const tag = 'restart';
    const step = (label: string, needs: string[]) =>
      job(label, {
        requires: [tag],
        command: `sleep 0.5; echo "${label} done"`,
        dependencies: needs.map((dep) => ({ job: dep, results: ['success', 'warning'] })),
      });
    const middle = Array.from({ length: 6 }, (_, i) => `middle-${i + 1}`);
    const graphId = await createGraph(database, scheduler, 'restart', [
      step('start', []),
      ...middle.map((label) => step(label, ['start'])),
      step('end', middle),
    ]);
    await startMinion(server, tag);
    await startMinion(server, tag);
    await waitFor('the graph to be under way', async () => {
      const view = await graphOf(server, graphId);
      const done = view.jobs.filter((j) => j.state === 'done').length;
      return done >= 2 && view.jobs.some((j) => j.state === 'running') ? true : undefined;
    });
    await first.stop('SIGKILL');
    processes.splice(processes.indexOf(first), 1);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await startServer(url, port, env);
    const done = await settled(server, graphId);
    // Each job first, so that a failure names the job and its reason.
    for (const j of done.jobs) {
      expect(j, j.label).toMatchObject({ state: 'done', result: 'success' });
      // Nothing ran twice: every job has its one run, ended by its own minion's report.
      expect(
        j.runs.map((r) => [r.state, r.result]),
        j.label,
      ).toEqual([['done', 'success']]);
    }
    expect(done.graph.result).toBe('success');
  }, 90_000);

  it('hands out no run twice across 5,000 jobs, with two servers and eight minions', async () => {
    const { url, database } = await freshDatabase();
    const ports = [await freePort(), await freePort()];
    const servers = ports.map((port) => `http://127.0.0.1:${port}`);
    await Promise.all(ports.map((port) => startServer(url, port)));
    const scheduler = schedulerOn(database);
    const tag = 'bulk';
    const jobs = Array.from({ length: 5000 }, (_, i) =>
      job(`job-${String(i).padStart(4, '0')}`, { requires: [tag], command: 'true' }),
    );
    const graphId = await createGraph(database, scheduler, 'bulk', jobs);
    // Eight minions speaking the protocol over HTTP, each to both servers in turn.
    const clients: MinionClient[][] = [];
    for (let i = 0; i < 8; i++) {
      const pair = servers.map((server) => createMinionClient({ server, retryForMs: 5000 }));
      const { credential } = await pair[0]!.register(TOKEN, {
        name: `bulk-${i}`,
        tags: [tag],
        trust: 'trusted',
      });
      for (const client of pair) client.useCredential(credential);
      clients.push(pair);
    }
    const claimed: number[] = [];
    const jobIds: number[] = [];
    await Promise.all(
      clients.map(async (pair) => {
        for (let turn = 0; ; turn++) {
          const client = pair[turn % 2]!;
          const run = await client.claim(0);
          if (!run) return;
          claimed.push(run.runId);
          jobIds.push(run.jobId);
          expect(await client.report(run.runId, { result: 'success', exitCode: 0 })).toBe('ok');
        }
      }),
    );
    expect(claimed).toHaveLength(5000);
    expect(new Set(claimed).size).toBe(5000);
    expect(new Set(jobIds).size).toBe(5000);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<{ runs: number; jobs: number }[]>`
        select count(*)::int as runs, count(distinct job_id)::int as jobs from runs`;
      expect(row).toEqual({ runs: 5000, jobs: 5000 });
    } finally {
      await sql.end();
    }
    const done = await settled(servers[1]!, graphId);
    expect(done.graph.result).toBe('success');
  }, 180_000);
});
