/**
 * The scheduler and the minion protocol on a real PostgreSQL 15, started
 * like the test suite's, each figure beside a PostgreSQL ceiling measured
 * in the same run: a bare single-row UPDATE loop with the same concurrency.
 *
 * - claims: throughput with BENCH_PENDING (100,000) pending jobs over 50
 *   tag sets and BENCH_MINIONS (10,000) registered minions;
 * - wake-ups: latency from the commit that makes a job pending to a
 *   waiting minion's long-poll claim returning it, BENCH_WAITERS (2,000)
 *   minions waiting across the tag sets, PostgreSQL LISTEN/NOTIFY;
 * - graphs: every job of a graph claimed and reported, at several sizes;
 * - memory: the RSS of a real `tower serve` on that PostgreSQL while
 *   minions claim over HTTP and the read API is queried.
 *
 * `BENCH_ROUNDS=N` sets the rounds whose median is quoted.
 */
import { setMaxListeners } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { createApiTokens } from '../src/access/api-tokens.js';
import { createAccessQueries } from '../src/db/access.js';
import type { TowerDb } from '../src/db/connection.js';
import { openDatabase, type Database } from '../src/db/connection.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { systemClock } from '../src/lib/clock.js';
import { createFileArtifactStore } from '../src/minions/artifact-store.js';
import {
  createInProcessNotifier,
  createPostgresNotifier,
  type Notifier,
} from '../src/minions/notifier.js';
import { createMinionProtocol, type Minion, type MinionProtocol } from '../src/minions/protocol.js';
import { createRunSignals } from '../src/minions/run-signals.js';
import { createScheduler, type Scheduler } from '../src/scheduler/scheduler.js';
import { insertEvent, insertRepositoryFixture } from '../test/support/fixtures.js';
import { job } from '../test/support/graph-specs.js';
import {
  findPostgresBinaries,
  freePort,
  startPostgresServer,
  type PostgresServer,
} from '../test/support/postgres-server.js';
import { baseEnv, runTower, waitForHealthy } from '../test/support/processes.js';
import { median } from './stats.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const PENDING = Number(process.env.BENCH_PENDING ?? 100_000);
const MINIONS = Number(process.env.BENCH_MINIONS ?? 10_000);
const WAITERS = Number(process.env.BENCH_WAITERS ?? 10_000);
const TAG_SETS = 50;
/** Concurrent claimers; Tower's pool has 10 connections, as the ceiling's has. */
const CLAIMERS = 32;
const POOL = 10;
const TOKEN = 'bench-registration-token';
const logger = createLogger({ level: 'silent' });

const platform = (i: number) => `p${String(i % TAG_SETS).padStart(2, '0')}`;

function graphSpec(name: string, jobs: JobSpec[]): GraphSpec {
  return {
    version: GRAPH_SPEC_VERSION,
    graph: name,
    event: { type: 'push', branch: 'main', sha: 'a'.repeat(40), changedFiles: null },
    defines: {},
    jobs: [...jobs].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)),
  };
}

const ms = (value: number) =>
  value < 1 ? value.toFixed(2) : value < 10 ? value.toFixed(1) : value.toFixed(0);
const perSecond = (count: number, elapsedMs: number) => count / (elapsedMs / 1000);
const thousands = (value: number) => Math.round(value).toLocaleString('en-US');

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Runs `work` on `concurrency` loops until `total` calls have started. */
async function concurrently(
  concurrency: number,
  total: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await work(next++);
    }),
  );
}

type BenchDatabase = Database & { url: string };

async function freshDatabase(server: PostgresServer, name: string): Promise<BenchDatabase> {
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = server.url.replace(/\/postgres$/, `/${name}`);
  const database = await openDatabase({ kind: 'postgres', url });
  await database.migrate();
  await insertRepositoryFixture(database.db);
  return { ...database, url };
}

type Domain = { scheduler: Scheduler; protocol: MinionProtocol; notifier: Notifier };

function domain(
  db: TowerDb,
  artifactsDir: string,
  options: { postgresNotifier: boolean; onCommit?: () => void },
): Domain {
  const notifier = options.postgresNotifier
    ? createPostgresNotifier({ db, logger })
    : createInProcessNotifier();
  const scheduler = createScheduler({
    db,
    clock: systemClock,
    onClaimable: async (keys) => {
      options.onCommit?.();
      await notifier.notify(keys);
    },
  });
  const protocol = createMinionProtocol({
    db,
    scheduler,
    clock: systemClock,
    notifier,
    artifacts: createFileArtifactStore(artifactsDir),
    runSignals: createRunSignals(),
    registrationTokens: { trusted: TOKEN },
    publicUrl: 'http://localhost',
  });
  return { scheduler, protocol, notifier };
}

/** `count` pending jobs in graphs of 10,000, spread over the tag sets and four priorities. */
async function seedPending(db: TowerDb, scheduler: Scheduler, count: number): Promise<number[]> {
  const graphIds: number[] = [];
  for (let first = 0; first < count; first += 10_000) {
    const size = Math.min(10_000, count - first);
    const jobs = Array.from({ length: size }, (_, i) =>
      job(`j${String(first + i).padStart(6, '0')}`, {
        requires: ['linux', platform(first + i)],
        priority: (first + i) % 4,
      }),
    );
    const { graphId } = await scheduler.createGraph({
      repositoryId: 10,
      eventId: await insertEvent(db),
      spec: graphSpec(`pending-${first}`, jobs),
      trust: 'trusted',
    });
    graphIds.push(graphId);
  }
  return graphIds;
}

/** Minion i has two platforms: it is eligible for two of the 50 tag sets. */
async function registerMinions(protocol: MinionProtocol, count: number): Promise<Minion[]> {
  const minions: Minion[] = new Array<Minion>(count);
  await concurrently(CLAIMERS, count, async (i) => {
    const tags = ['linux', platform(i), platform(i + 7)].sort();
    const { minionId } = await protocol.register(TOKEN, {
      name: `m${i}`,
      tags,
      trust: 'trusted',
    });
    minions[i] = { id: minionId, name: `m${i}`, tags, trust: 'trusted', state: 'active' };
  });
  return minions;
}

/** The ceiling: `total` single-row UPDATEs on `concurrency` loops over a pool like Tower's. */
async function updateCeiling(
  url: string,
  concurrency: number,
  total: number,
): Promise<{ perSecond: number; latencies: number[] }> {
  const sql = postgres(url, { max: POOL, onnotice: () => {} });
  try {
    await sql`create table if not exists ceiling (id int primary key, n int not null default 0)`;
    await sql`insert into ceiling (id) select generate_series(1, 100000) on conflict do nothing`;
    const latencies: number[] = [];
    const start = performance.now();
    await concurrently(concurrency, total, async () => {
      const id = 1 + Math.floor(Math.random() * 100_000);
      const began = performance.now();
      await sql`update ceiling set n = n + 1 where id = ${id}`;
      latencies.push(performance.now() - began);
    });
    return { perSecond: perSecond(total, performance.now() - start), latencies };
  } finally {
    await sql.end();
  }
}

/** The claim statement's plan, run for real in a transaction rolled back. */
async function explainClaim(database: BenchDatabase, minion: Minion): Promise<string> {
  let captured: { query: string; params: unknown[] } | undefined;
  const { drizzle } = await import('drizzle-orm/postgres-js');
  const schema = await import('../src/db/schema.js');
  const client = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    const db = drizzle(client, {
      schema,
      logger: {
        logQuery: (query, params) => {
          if (query.includes('for update of j skip locked')) captured = { query, params };
        },
      },
    });
    // A real claim (it takes a job) gives the statement and its parameters.
    await createScheduler({ db, clock: systemClock }).claim({
      minionId: minion.id,
      leaseMs: 60_000,
    });
    if (!captured) throw new Error('no claim statement captured');
    const { query, params } = captured;
    let plan = '';
    const rollback = new Error('rollback');
    await client
      .begin(async (tx) => {
        const rows = await tx.unsafe(
          `explain (analyze, costs off, timing off, summary on) ${query}`,
          params as never[],
        );
        plan = rows.map((row) => String(row['QUERY PLAN'])).join('\n');
        throw rollback;
      })
      .catch((error: unknown) => {
        if (error !== rollback) throw error;
      });
    return plan;
  } finally {
    await client.end();
  }
}

async function claimSuite(server: PostgresServer, artifactsDir: string): Promise<string[]> {
  const database = await freshDatabase(server, 'bench_claims');
  const { scheduler, protocol, notifier } = domain(database.db, artifactsDir, {
    postgresNotifier: true,
  });
  try {
    let start = performance.now();
    await seedPending(database.db, scheduler, PENDING);
    const seeded = performance.now() - start;
    start = performance.now();
    const minions = await registerMinions(protocol, MINIONS);
    const registered = performance.now() - start;

    const perRound = 5_000;
    const claims: number[] = [];
    const ceilings: number[] = [];
    let misses = 0;
    for (let round = 0; round < rounds; round++) {
      start = performance.now();
      await concurrently(CLAIMERS, perRound, async () => {
        const minion = minions[Math.floor(Math.random() * minions.length)]!;
        const run = await protocol.claim(minion, { waitSeconds: 0 });
        if (!run) misses++;
      });
      claims.push(perSecond(perRound, performance.now() - start));
      ceilings.push((await updateCeiling(database.url, CLAIMERS, perRound)).perSecond);
    }
    const plan = await explainClaim(database, minions[0]!);
    const usesIndex = /Index Scan using jobs_claim_idx/.test(plan);
    const claimRate = median(claims);
    const ceiling = median(ceilings);
    return [
      `### Claims: ${thousands(PENDING)} pending jobs, ${TAG_SETS} tag sets, ${thousands(MINIONS)} minions`,
      '',
      `Seeding: ${thousands(PENDING)} jobs stored in ${ms(seeded / 1000)} s (graphs of 10,000); ${thousands(MINIONS)} minions registered in ${ms(registered / 1000)} s.`,
      `${CLAIMERS} concurrent claimers through the protocol's claim (waitSeconds 0), each for a random minion eligible for 2 tag sets; ${perRound} claims a round, median of ${rounds}. Claims that found nothing: ${misses}.`,
      '',
      '| claims/s | PostgreSQL ceiling (UPDATE/s) | ratio |',
      '| ---: | ---: | ---: |',
      `| ${thousands(claimRate)} | ${thousands(ceiling)} | ${(claimRate / ceiling).toFixed(2)} |`,
      '',
      `EXPLAIN ANALYZE of the claim statement (${usesIndex ? 'uses' : 'does NOT use'} jobs_claim_idx):`,
      '',
      '```',
      plan,
      '```',
    ];
  } finally {
    await notifier.close();
    await database.close();
  }
}

async function wakeSuite(server: PostgresServer, artifactsDir: string): Promise<string[]> {
  const database = await freshDatabase(server, 'bench_wake');
  let committedAt = 0;
  const { scheduler, protocol, notifier } = domain(database.db, artifactsDir, {
    postgresNotifier: true,
    onCommit: () => (committedAt = performance.now()),
  });
  const stop = new AbortController();
  // Every waiting claim listens to the one signal.
  setMaxListeners(0, stop.signal);
  try {
    const minions = await registerMinions(protocol, WAITERS);
    const samples = { create: [] as number[], finish: [] as number[] };
    let claimed:
      ((run: { label: string; at: number; minion: Minion; runId: number }) => void) | undefined;
    const loops = minions.map(async (minion) => {
      while (!stop.signal.aborted) {
        const run = await protocol.claim(minion, { waitSeconds: 20 }, stop.signal);
        if (run) claimed?.({ label: run.label, at: performance.now(), minion, runId: run.runId });
      }
    });
    // Every waiter's first attempt has run, and it sleeps.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const next = () =>
      new Promise<{ label: string; at: number; minion: Minion; runId: number }>((resolve) => {
        claimed = resolve;
      });
    const jobsToRun = 150;
    for (let i = 0; i < jobsToRun; i++) {
      const first = platform(i * 13);
      const second = platform(i * 13 + 5);
      const gotFirst = next();
      await scheduler.createGraph({
        repositoryId: 10,
        eventId: await insertEvent(database.db),
        spec: graphSpec(`wake-${i}`, [
          job('first', { requires: ['linux', first] }),
          job('second', { requires: ['linux', second], needs: ['first'] }),
        ]),
        trust: 'trusted',
      });
      const a = await gotFirst;
      samples.create.push(a.at - committedAt);
      const gotSecond = next();
      await protocol.report(a.minion, a.runId, { result: 'success' });
      const b = await gotSecond;
      samples.finish.push(b.at - committedAt);
      await protocol.report(b.minion, b.runId, { result: 'success' });
    }
    stop.abort();
    await Promise.all(loops);

    // The ceilings: one UPDATE at a time, and NOTIFY to LISTEN on the same server.
    const update = await updateCeiling(database.url, 1, 2 * jobsToRun);
    const notifyLatencies = await notifyCeiling(database.url, 2 * jobsToRun);
    const all = [...samples.create, ...samples.finish];
    const row = (name: string, values: number[]) =>
      `| ${name} | ${ms(median(values))} | ${ms(percentile(values, 99))} | ${ms(Math.max(...values))} |`;
    return [
      `### Wake-up latency: ${thousands(WAITERS)} minions waiting over ${TAG_SETS} tag sets`,
      '',
      `Each minion long-polls (waitSeconds 20) for 2 of the ${TAG_SETS} tag sets, so about ${Math.round((WAITERS * 2) / TAG_SETS)} wait on each set. A graph of two jobs on two sets is created; a waiter claims the first, reports it, and a waiter claims the second. Measured from the commit (the scheduler's onClaimable, called after it) to the waiter's claim returning, ${jobsToRun} graphs.`,
      '',
      '| made pending by | median (ms) | p99 (ms) | max (ms) |',
      '| --- | ---: | ---: | ---: |',
      row('createGraph', samples.create),
      row('finishRun (a report)', samples.finish),
      row('both', all),
      row('ceiling: one UPDATE round trip', update.latencies),
      row('ceiling: NOTIFY → LISTEN delivery', notifyLatencies),
    ];
  } finally {
    stop.abort();
    await notifier.close();
    await database.close();
  }
}

/** NOTIFY from one connection until its LISTEN on another hears it. */
async function notifyCeiling(url: string, count: number): Promise<number[]> {
  const sender = postgres(url, { max: 1, onnotice: () => {} });
  const listener = postgres(url, { max: 1, onnotice: () => {} });
  const latencies: number[] = [];
  try {
    let heard: (() => void) | undefined;
    await listener.listen('bench_ceiling', () => heard?.());
    for (let i = 0; i < count; i++) {
      const got = new Promise<void>((resolve) => (heard = resolve));
      const began = performance.now();
      await sender`select pg_notify('bench_ceiling', 'x')`;
      await got;
      latencies.push(performance.now() - began);
    }
    return latencies;
  } finally {
    await sender.end();
    await listener.end();
  }
}

/** A graph of `size` jobs in layers of 100; each job past the first layer needs two of the layer before. */
function layeredGraph(size: number): { spec: GraphSpec; edges: number } {
  const width = 100;
  const label = (i: number) => `j${String(i).padStart(6, '0')}`;
  let edges = 0;
  const jobs = Array.from({ length: size }, (_, i) => {
    if (i < width) return job(label(i), { requires: ['linux'] });
    const layerStart = i - (i % width) - width;
    const needs = [label(layerStart + (i % width)), label(layerStart + ((i * 7 + 3) % width))];
    const unique = [...new Set(needs)];
    edges += unique.length;
    return job(label(i), { requires: ['linux'], needs: unique });
  });
  return { spec: graphSpec(`layered-${size}`, jobs), edges };
}

async function graphSuite(server: PostgresServer, artifactsDir: string): Promise<string[]> {
  const database = await freshDatabase(server, 'bench_graphs');
  const { scheduler, protocol, notifier } = domain(database.db, artifactsDir, {
    postgresNotifier: true,
  });
  const workers = 16;
  try {
    const minions: Minion[] = [];
    for (let i = 0; i < workers; i++) {
      const { minionId } = await protocol.register(TOKEN, {
        name: `w${i}`,
        tags: ['linux'],
        trust: 'trusted',
      });
      minions.push({
        id: minionId,
        name: `w${i}`,
        tags: ['linux'],
        trust: 'trusted',
        state: 'active',
      });
    }
    const lines = [
      `### Completing a graph: every job claimed and reported by ${workers} minions`,
      '',
      `Layers of 100 jobs, each job past the first layer needing two of the layer before. ${workers} minions loop over claim (long-poll) and report (success) through the protocol; the time runs from createGraph's start to the last report. Median of ${rounds} rounds; the ceiling is as many single-row UPDATEs as claims + reports, on ${workers} loops.`,
      '',
      '| jobs | edges | create (ms) | complete (s) | jobs/s | µs per edge | ceiling (UPDATE/s) | jobs/s ÷ ceiling |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ];
    for (const size of [1_000, 5_000, 10_000, 20_000]) {
      const { spec, edges } = layeredGraph(size);
      const creates: number[] = [];
      const totals: number[] = [];
      const ceilings: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const eventId = await insertEvent(database.db);
        let reported = 0;
        const start = performance.now();
        await scheduler.createGraph({ repositoryId: 10, eventId, spec, trust: 'trusted' });
        creates.push(performance.now() - start);
        await Promise.all(
          minions.map(async (minion) => {
            while (reported < size) {
              const run = await protocol.claim(minion, { waitSeconds: 1 });
              if (!run) continue;
              await protocol.report(minion, run.runId, { result: 'success' });
              reported++;
            }
          }),
        );
        totals.push(performance.now() - start);
        ceilings.push((await updateCeiling(database.url, workers, 2 * size)).perSecond);
      }
      const total = median(totals);
      const rate = perSecond(size, total);
      lines.push(
        `| ${thousands(size)} | ${thousands(edges)} | ${ms(median(creates))} | ${(total / 1000).toFixed(2)} | ${thousands(rate)} | ${((total * 1000) / edges).toFixed(0)} | ${thousands(median(ceilings))} | ${((2 * rate) / median(ceilings)).toFixed(2)} (2 statements a job) |`,
      );
    }
    return lines;
  } finally {
    await notifier.close();
    await database.close();
  }
}

/** Resident memory of a process and its descendants, in MB. */
function treeRss(pid: number): { total: number; largest: number } {
  let total = 0;
  let largest = 0;
  const visit = (id: number) => {
    try {
      const status = readFileSync(`/proc/${id}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      total += kb / 1024;
      largest = Math.max(largest, kb / 1024);
      for (const task of readdirSync(`/proc/${id}/task`)) {
        const children = readFileSync(`/proc/${id}/task/${task}/children`, 'utf8').trim();
        for (const child of children.split(/\s+/).filter(Boolean)) visit(Number(child));
      }
    } catch {
      // ended meanwhile
    }
  };
  visit(pid);
  return { total, largest };
}

async function memorySuite(server: PostgresServer, artifactsDir: string): Promise<string[]> {
  const database = await freshDatabase(server, 'bench_serve');
  const { scheduler, notifier } = domain(database.db, artifactsDir, { postgresNotifier: false });
  const graphIds = await seedPending(database.db, scheduler, PENDING);
  // The minion inventory and the queue are for operators.
  const { token: operator } = await createApiTokens({
    queries: createAccessQueries(database.db),
    clock: systemClock,
  }).create({ name: 'bench', scope: { operator: true } });
  await notifier.close();
  await database.close();

  const dataDir = await mkdtemp(join(tmpdir(), 'tower-bench-serve-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const tower = runTower(['serve'], {
    cwd: dataDir,
    env: baseEnv({
      DATABASE_URL: database.url,
      TOWER_PORT: String(port),
      TOWER_DATA_DIR: dataDir,
      TOWER_MINION_TOKEN: TOKEN,
      TOWER_LOG_LEVEL: 'warn',
      TOWER_EMBEDDED_MINION: 'false',
      // A server, not the demo: no GitHub simulator beside it.
      TOWER_SANDBOX: 'false',
    }),
  });
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(treeRss(tower.child.pid!).largest), 250);
  try {
    await waitForHealthy(tower, url, 60_000);
    const idle = treeRss(tower.child.pid!);
    const post = async (path: string, token: string, body: unknown) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const credentials: string[] = new Array<string>(MINIONS);
    await concurrently(CLAIMERS, MINIONS, async (i) => {
      const response = await post('/api/v1/minion/register', TOKEN, {
        name: `m${i}`,
        tags: ['linux', platform(i), platform(i + 7)],
      });
      credentials[i] = ((await response.json()) as { credential: string }).credential;
    });
    // 1,000 minions wait on a tag set with no work, holding their requests open.
    const waiting: Promise<unknown>[] = [];
    const idleMinions: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const response = await post('/api/v1/minion/register', TOKEN, {
        name: `idle${i}`,
        tags: ['nothing-here'],
      });
      idleMinions.push(((await response.json()) as { credential: string }).credential);
    }
    const until = Date.now() + 30_000;
    for (const credential of idleMinions) {
      waiting.push(
        (async () => {
          while (Date.now() < until) {
            const response = await post('/api/v1/minion/claim', credential, { waitSeconds: 10 });
            await response.arrayBuffer();
          }
        })(),
      );
    }
    let claims = 0;
    let reads = 0;
    const claimers = Array.from({ length: CLAIMERS }, async () => {
      while (Date.now() < until) {
        const credential = credentials[Math.floor(Math.random() * credentials.length)]!;
        const response = await post('/api/v1/minion/claim', credential, { waitSeconds: 0 });
        await response.arrayBuffer();
        if (response.status === 200) claims++;
      }
    });
    const readers = Array.from({ length: 4 }, async (_, r) => {
      const paths = ['/api/v1/queue', '/api/v1/minions', `/api/v1/graphs/${graphIds[r]}`];
      while (Date.now() < until) {
        for (const path of paths) {
          const response = await fetch(`${url}${path}`, {
            headers: { authorization: `Bearer ${operator}` },
          });
          await response.arrayBuffer();
          reads++;
        }
      }
    });
    await Promise.all([...claimers, ...readers, ...waiting]);
    const peak = Math.max(...samples);
    return [
      `### Server memory: \`tower serve\` on PostgreSQL with ${thousands(PENDING)} pending jobs`,
      '',
      `A real \`tower serve\` process (node with tsx's loader, as \`npm start\` runs it) on the database above: ${thousands(MINIONS)} minions registered over HTTP, then for 30 s ${CLAIMERS} loops claim (waitSeconds 0) as random minions, 1,000 more minions long-poll a tag set without work, and 4 readers loop over GET /api/v1/queue (counting the ${thousands(PENDING)} pending jobs), /api/v1/minions (a page of 1,000 of the ${thousands(MINIONS + 1000)} minions) and /api/v1/graphs/:id (its job counts and a page of 1,000 of its 10,000 jobs). RSS of the server's node process, sampled every 250 ms.`,
      '',
      '| idle after start (MB) | median under load (MB) | peak (MB) | claims in 30 s | reads in 30 s |',
      '| ---: | ---: | ---: | ---: | ---: |',
      `| ${idle.largest.toFixed(0)} | ${median(samples).toFixed(0)} | ${peak.toFixed(0)} | ${thousands(claims)} | ${thousands(reads)} |`,
    ];
  } finally {
    clearInterval(sampler);
    await tower.stop('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function schedulerSuite(): Promise<string> {
  const binDir = findPostgresBinaries();
  if (!binDir) return 'PostgreSQL server binaries not found: the scheduler suite needs PostgreSQL.';
  const only = (process.env.BENCH_PARTS ?? 'claims,wake,graphs,memory').split(',');
  const server = await startPostgresServer(binDir);
  const artifactsDir = await mkdtemp(join(tmpdir(), 'tower-bench-artifacts-'));
  const lines: string[] = [];
  try {
    if (only.includes('claims')) lines.push(...(await claimSuite(server, artifactsDir)), '');
    if (only.includes('wake')) lines.push(...(await wakeSuite(server, artifactsDir)), '');
    if (only.includes('graphs')) lines.push(...(await graphSuite(server, artifactsDir)), '');
    if (only.includes('memory')) lines.push(...(await memorySuite(server, artifactsDir)), '');
  } finally {
    await server.stop();
    await rm(artifactsDir, { recursive: true, force: true });
  }
  return lines.join('\n');
}
