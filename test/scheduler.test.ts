import { eq, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import type { Sql } from 'postgres';
import type { TowerDb } from '../src/db/connection.js';
import * as schema from '../src/db/schema.js';
import { minions } from '../src/db/schema.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { createMaintenance } from '../src/minions/maintenance.js';
import { createScheduler, type Scheduler } from '../src/scheduler/scheduler.js';
import { backends, type TestDatabase } from './support/databases.js';
import { insertEvent, insertRepositoryFixture } from './support/fixtures.js';
import { job } from './support/graph-specs.js';

// ---------------------------------------------------------------------------
// Builders

function graphSpec(name: string, jobs: JobSpec[]): GraphSpec {
  return {
    version: GRAPH_SPEC_VERSION,
    graph: name,
    event: { type: 'push', branch: 'main', sha: 'a'.repeat(40), changedFiles: null },
    defines: {},
    jobs: [...jobs].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)),
  };
}

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

/** A drizzle instance over the same client that counts the statements it sends. */
function countingDb(database: TestDatabase): { db: TowerDb; count: () => number } {
  let statements = 0;
  const logger = { logQuery: () => void statements++ };
  // drizzle keeps its client as `$client`; TowerDb's type does not expose it.
  const client: unknown = Reflect.get(database.db, '$client');
  const db =
    database.kind === 'pglite'
      ? drizzlePglite(client as PGlite, { schema, logger })
      : drizzlePostgres(client as Sql, { schema, logger });
  return { db, count: () => statements };
}

const LEASE = 60_000;

describe.each(backends())('scheduler on $name', (backend) => {
  let database: TestDatabase;
  let scheduler: Scheduler;
  const clock = manualClock(new Date('2026-01-01T00:00:00Z'));
  let minionCounter = 0;
  let tagCounter = 0;
  const graphsOfTest: number[] = [];

  beforeAll(async () => {
    database = await backend.open();
    scheduler = createScheduler({ db: database.db, clock, leaseClock: clock });
    await insertRepositoryFixture(database.db);
  });
  afterAll(async () => {
    await database.dispose();
  });
  afterEach(async () => {
    // Nothing a test leaves running or pending reaches the next one (claims and leases are global).
    for (const graphId of graphsOfTest.splice(0)) await scheduler.cancel({ graphId });
  });

  const newEvent = () => insertEvent(database.db);

  async function newMinion(tags: string[]): Promise<{ id: number; tags: string[] }> {
    const n = ++minionCounter;
    const [row] = await database.db
      .insert(minions)
      .values({ name: `minion-${n}`, tags, credentialHash: `hash-${n}` })
      .returning({ id: minions.id });
    return { id: row!.id, tags };
  }

  /** A tag no other test uses. */
  const freshTag = () => `t${++tagCounter}`;

  async function create(spec: GraphSpec) {
    const created = await scheduler.createGraph({
      repositoryId: 10,
      eventId: await newEvent(),
      spec,
      trust: 'trusted',
    });
    graphsOfTest.push(created.graphId);
    return created;
  }

  async function statusOf(graphId: number) {
    const status = (await scheduler.graphStatus({ graphId }))!;
    const byLabel = new Map(status.jobs.map((j) => [j.label, j]));
    return { ...status, job: (label: string) => byLabel.get(label)! };
  }

  async function states(graphId: number): Promise<Record<string, string>> {
    const status = await statusOf(graphId);
    return Object.fromEntries(
      status.jobs.map((j) => [
        j.label,
        j.state === 'done' ? `done ${j.result}${j.reason ? ` ${j.reason}` : ''}` : j.state,
      ]),
    );
  }

  async function claim(minion: { id: number; tags: string[] }, leaseMs = LEASE) {
    return scheduler.claim({ minionId: minion.id, leaseMs });
  }

  it('drives a graph with dependencies to completion through claims and finishes', async () => {
    const tag = freshTag();
    const cmd = (label: string, options: Parameters<typeof job>[1] = {}) =>
      job(label, { requires: [tag], ...options });
    const { graphId, jobCount } = await create(
      graphSpec('per-checkin', [
        cmd('build'),
        cmd('test', { needs: ['build'] }),
        cmd('lint'),
        cmd('report-failure', { needs: { test: ['failure'] } }),
        job('tests-done', { kind: 'dummy', needs: { test: 'finished', lint: 'finished' } }),
        cmd('after-lint', { needs: ['lint'] }),
        cmd('always', { needs: { lint: 'any' } }),
        job('approve', { kind: 'breakpoint' }),
      ]),
    );
    expect(jobCount).toBe(8);
    expect(await states(graphId)).toEqual({
      'after-lint': 'blocked',
      always: 'blocked',
      approve: 'pending',
      build: 'pending',
      lint: 'pending',
      'report-failure': 'blocked',
      test: 'blocked',
      'tests-done': 'blocked',
    });
    const minion = await newMinion([tag]);

    const claimed: string[] = [];
    const first = (await claim(minion))!;
    const second = (await claim(minion))!;
    claimed.push(first.label, second.label);
    expect(claimed.sort()).toEqual(['build', 'lint']);
    const build = first.label === 'build' ? first : second;
    const lint = first.label === 'build' ? second : first;
    expect(build).toMatchObject({ graphId, attempt: 1, cause: 'scheduled' });
    expect(build.job.command).toBe('make build');
    // The breakpoint is pending but never goes to a minion.
    expect(await claim(minion)).toBeUndefined();

    expect(
      await scheduler.finishRun({
        runId: build.runId,
        minionId: minion.id,
        result: 'success',
        exitCode: 0,
      }),
    ).toBe('ok');
    expect((await states(graphId)).test).toBe('pending');
    expect(
      await scheduler.finishRun({
        runId: lint.runId,
        minionId: minion.id,
        result: 'failure',
        exitCode: 1,
      }),
    ).toBe('ok');
    expect(await states(graphId)).toMatchObject({
      'after-lint': 'done skipped dependency-result',
      always: 'pending',
      'tests-done': 'blocked',
    });

    const next = new Set<string>();
    for (let c = await claim(minion); c; c = await claim(minion)) {
      next.add(c.label);
      await scheduler.finishRun({ runId: c.runId, minionId: minion.id, result: 'success' });
    }
    expect([...next].sort()).toEqual(['always', 'test']);
    expect(await states(graphId)).toEqual({
      'after-lint': 'done skipped dependency-result',
      always: 'done success',
      approve: 'pending',
      build: 'done success',
      lint: 'done failure',
      'report-failure': 'done skipped dependency-result',
      test: 'done success',
      'tests-done': 'done success',
    });
    let status = await statusOf(graphId);
    expect(status.graph.state).toBe('running');
    expect(status.job('build').runs).toMatchObject([
      {
        attempt: 1,
        cause: 'scheduled',
        state: 'done',
        result: 'success',
        exitCode: 0,
        minionId: minion.id,
      },
    ]);

    // The breakpoint is finished by a later step; here, straight through the state machine.
    await scheduler.cancel({ graphId, jobId: status.job('approve').id });
    status = await statusOf(graphId);
    expect(status.graph).toMatchObject({ state: 'done', result: 'failure' });
    expect(status.graph.finishedAt).toEqual(clock.now());
  });

  it('propagates through chains of dummies and skips, loading only what the event reaches', async () => {
    const tag = freshTag();
    const { graphId } = await create(
      graphSpec('cascade', [
        job('a', { requires: [tag] }),
        job('d1', { kind: 'dummy', needs: ['a'] }),
        job('d2', { kind: 'dummy', needs: ['d1'] }),
        job('c', { requires: [tag], needs: ['d2'] }),
        job('s1', { requires: [tag], needs: { a: ['failure'] } }),
        job('s2', { requires: [tag], needs: ['s1'] }),
        job('s3', { kind: 'dummy', needs: ['s2', 'c'] }),
      ]),
    );
    const minion = await newMinion([tag]);
    const a = (await claim(minion))!;
    await scheduler.finishRun({ runId: a.runId, minionId: minion.id, result: 'success' });
    expect(await states(graphId)).toEqual({
      a: 'done success',
      c: 'pending',
      d1: 'done success',
      d2: 'done success',
      s1: 'done skipped dependency-result',
      s2: 'done skipped dependency-result',
      s3: 'done skipped dependency-result',
    });
  });

  it('sees both upstreams when they finish at the same time', async () => {
    const tag = freshTag();
    const { graphId } = await create(
      graphSpec('join', [
        job('a', { requires: [tag] }),
        job('b', { requires: [tag] }),
        job('c', { requires: [tag], needs: ['a', 'b'] }),
      ]),
    );
    const minion = await newMinion([tag]);
    const runs = [(await claim(minion))!, (await claim(minion))!];
    await Promise.all(
      runs.map((run) =>
        scheduler.finishRun({ runId: run.runId, minionId: minion.id, result: 'success' }),
      ),
    );
    expect((await states(graphId)).c).toBe('pending');
  });

  it('stores a graph once per event and graph name', async () => {
    const spec = graphSpec('once', [job('a', { requires: [freshTag()] })]);
    const eventId = await newEvent();
    const first = await scheduler.createGraph({
      repositoryId: 10,
      eventId,
      spec,
      trust: 'trusted',
    });
    const again = await scheduler.createGraph({
      repositoryId: 10,
      eventId,
      spec,
      trust: 'trusted',
    });
    graphsOfTest.push(first.graphId);
    expect(again).toEqual(first);
  });

  it('marks a graph of dummies done at once', async () => {
    const { graphId } = await create(
      graphSpec('dummies', [
        job('a', { kind: 'dummy' }),
        job('b', { kind: 'dummy', needs: ['a'], dummy: { result: 'warning' } }),
      ]),
    );
    const status = await statusOf(graphId);
    expect(status.graph).toMatchObject({ state: 'done', result: 'success' });
    expect(await states(graphId)).toEqual({ a: 'done success', b: 'done warning' });
  });

  it('claims the highest priority first, then the oldest', async () => {
    const tag = freshTag();
    await create(
      graphSpec('old', [
        job('low', { requires: [tag], priority: 1 }),
        job('high-old', { requires: [tag], priority: 5 }),
      ]),
    );
    clock.advance(1);
    await create(graphSpec('new', [job('high-new', { requires: [tag], priority: 5 })]));
    const minion = await newMinion([tag]);
    const order: string[] = [];
    for (let c = await claim(minion); c; c = await claim(minion)) order.push(c.label);
    expect(order).toEqual(['high-old', 'high-new', 'low']);
  });

  it('gives a job only to minions that have all of its tags', async () => {
    const tag = freshTag();
    const { graphId } = await create(graphSpec('gpu', [job('train', { requires: [tag, 'gpu'] })]));
    const lacking = await newMinion([tag]);
    const superset = await newMinion([tag, 'gpu', 'linux']);
    expect(await claim(lacking)).toBeUndefined();
    expect(await claim(superset)).toMatchObject({ graphId, label: 'train' });
    expect(await claim(lacking)).toBeUndefined();
  });

  it('never hands out a job twice to concurrent claims', async () => {
    const tag = freshTag();
    const count = 200;
    await create(
      graphSpec(
        'wide',
        Array.from({ length: count }, (_, i) =>
          job(`j${String(i).padStart(3, '0')}`, { requires: [tag] }),
        ),
      ),
    );
    const claimers = await Promise.all(Array.from({ length: 20 }, () => newMinion([tag])));
    const claimed = await Promise.all(
      claimers.map(async (minion) => {
        const mine: number[] = [];
        for (let c = await claim(minion); c; c = await claim(minion)) mine.push(c.jobId);
        return mine;
      }),
    );
    const all = claimed.flat();
    expect(all).toHaveLength(count);
    expect(new Set(all).size).toBe(count);
  });

  it('retries a job whose lease lapsed, preferably on another minion, up to its retries', async () => {
    const tag = freshTag();
    const { graphId } = await create(
      graphSpec('flaky', [
        job('flaky', { requires: [tag], retries: 2, priority: 5 }),
        job('other', { requires: [tag] }),
      ]),
    );
    const m1 = await newMinion([tag]);
    const m2 = await newMinion([tag]);
    const first = (await claim(m1, 10_000))!;
    expect(first).toMatchObject({ label: 'flaky', attempt: 1, cause: 'scheduled' });

    clock.advance(5);
    expect(await scheduler.expireLeases()).toBe(0);
    clock.advance(6);
    expect(await scheduler.expireLeases()).toBe(1);
    let status = await statusOf(graphId);
    expect(status.job('flaky')).toMatchObject({ state: 'pending', retriesUsed: 1 });
    expect(status.job('flaky').runs[0]).toMatchObject({
      state: 'done',
      result: 'exception',
      reason: 'claim-expired',
    });
    // The minion that lost it gets other work first; another minion takes the retry.
    expect(await claim(m1)).toMatchObject({ label: 'other' });
    const second = (await claim(m2, 10_000))!;
    expect(second).toMatchObject({ label: 'flaky', attempt: 2, cause: 'auto-retry' });

    // Lost again (a minion shutdown this time); when m2 is the only one asking, it may take it.
    expect(
      await scheduler.finishRun({
        runId: second.runId,
        minionId: m2.id,
        result: 'exception',
        reason: 'minion-shutdown',
      }),
    ).toBe('ok');
    const third = (await claim(m2, 10_000))!;
    expect(third).toMatchObject({ label: 'flaky', attempt: 3, cause: 'auto-retry' });
    clock.advance(11);
    expect(await scheduler.expireLeases()).toBe(1);
    status = await statusOf(graphId);
    expect(status.job('flaky')).toMatchObject({
      state: 'done',
      result: 'exception',
      reason: 'claim-expired',
      retriesUsed: 2,
    });
    expect(status.job('flaky').runs.map((r) => [r.attempt, r.cause, r.reason])).toEqual([
      [1, 'scheduled', 'claim-expired'],
      [2, 'auto-retry', 'minion-shutdown'],
      [3, 'auto-retry', 'claim-expired'],
    ]);
  });

  it('ends jobs at their request timeout, max runtime and idle timeout', async () => {
    const tag = freshTag();
    const { graphId } = await create(
      graphSpec('timeouts', [
        job('waits', {
          requires: [`${tag}-nobody`],
          requestTimeout: { seconds: 60, result: 'skipped' },
        }),
        job('long', { requires: [tag], maxRuntime: 100 }),
        job('quiet', { requires: [tag], idleTimeout: 30 }),
        job('after-long', { requires: [tag], needs: { long: ['timed-out'] }, priority: -1 }),
      ]),
    );
    const minion = await newMinion([tag]);
    const long = (await claim(minion, 3_600_000))!;
    const quiet = (await claim(minion, 3_600_000))!;
    expect([long.label, quiet.label]).toEqual(['long', 'quiet']);

    clock.advance(20);
    expect(await scheduler.touchOutput({ runId: quiet.runId, minionId: minion.id })).toBe('ok');
    clock.advance(20); // 40 s since the start, 20 s since the output
    expect(await scheduler.enforceTimeouts()).toBe(0);
    clock.advance(11); // 31 s of silence
    expect(await scheduler.enforceTimeouts()).toBe(1);
    expect((await states(graphId)).quiet).toBe('done timed-out idle-timeout');
    expect(
      await scheduler.heartbeat({ runId: quiet.runId, minionId: minion.id, leaseMs: LEASE }),
    ).toBe('stop');

    clock.advance(10); // 61 s pending
    expect(await scheduler.enforceTimeouts()).toBe(1);
    expect((await states(graphId)).waits).toBe('done skipped request-timeout');

    clock.advance(40); // 101 s running
    expect(await scheduler.enforceTimeouts()).toBe(1);
    const status = await statusOf(graphId);
    expect(status.job('long')).toMatchObject({
      state: 'done',
      result: 'timed-out',
      reason: 'max-runtime',
    });
    expect(status.job('long').runs[0]).toMatchObject({
      state: 'done',
      result: 'timed-out',
      reason: 'max-runtime',
    });
    expect(status.job('after-long').state).toBe('pending');
    expect(
      await scheduler.finishRun({ runId: long.runId, minionId: minion.id, result: 'success' }),
    ).toBe('refused');
    expect(await scheduler.enforceTimeouts()).toBe(0);
  });

  it('reopens skipped descendants on a retrigger, and the graph converges again', async () => {
    const tag = freshTag();
    const { graphId } = await create(
      graphSpec('retrigger', [
        job('build', { requires: [tag] }),
        job('test', { requires: [tag], needs: ['build'] }),
        job('done', { kind: 'dummy', needs: ['test'] }),
      ]),
    );
    const minion = await newMinion([tag]);
    const build = (await claim(minion))!;
    await scheduler.finishRun({ runId: build.runId, minionId: minion.id, result: 'failure' });
    expect(await states(graphId)).toEqual({
      build: 'done failure',
      done: 'done skipped dependency-result',
      test: 'done skipped dependency-result',
    });
    expect((await statusOf(graphId)).graph).toMatchObject({ state: 'done', result: 'failure' });

    const buildId = (await statusOf(graphId)).job('build').id;
    expect(await scheduler.retrigger({ jobId: buildId })).toMatchObject({ ok: true });
    expect(await states(graphId)).toEqual({ build: 'pending', done: 'blocked', test: 'blocked' });
    expect((await statusOf(graphId)).graph).toMatchObject({ state: 'running', result: null });
    // A job that is not done cannot be retriggered: a refusal, as data.
    expect(await scheduler.retrigger({ jobId: buildId })).toEqual({
      ok: false,
      reason: 'retrigger needs a done job, but job "build" is pending',
    });

    const again = (await claim(minion))!;
    expect(again).toMatchObject({ label: 'build', attempt: 2, cause: 'retrigger' });
    await scheduler.finishRun({ runId: again.runId, minionId: minion.id, result: 'success' });
    const test = (await claim(minion))!;
    expect(test).toMatchObject({ label: 'test', attempt: 1, cause: 'retrigger' });
    await scheduler.finishRun({ runId: test.runId, minionId: minion.id, result: 'warning' });
    expect(await states(graphId)).toEqual({
      build: 'done success',
      done: 'done success',
      test: 'done warning',
    });
    expect((await statusOf(graphId)).graph).toMatchObject({ state: 'done', result: 'success' });
  });

  it('cancels one job (its dependents are skipped) or the whole graph (runs end too)', async () => {
    const tag = freshTag();
    const { graphId } = await create(
      graphSpec('cancel', [
        job('a', { requires: [tag] }),
        job('b', { requires: [tag], needs: ['a'] }),
        job('c', { requires: [tag], priority: 1 }),
        job('d', { requires: [tag] }),
        job('later', { kind: 'dummy', inactive: true }),
      ]),
    );
    const minion = await newMinion([tag]);
    const c = (await claim(minion))!;
    expect(c.label).toBe('c');
    const aId = (await statusOf(graphId)).job('a').id;
    expect(await scheduler.cancel({ graphId, jobId: aId })).toEqual({ ok: true, transitions: 2 });
    expect(await states(graphId)).toMatchObject({
      a: 'done cancelled user-cancel',
      b: 'done skipped dependency-result',
    });

    expect(await scheduler.cancel({ graphId, reason: 'superseded' })).toEqual({
      ok: true,
      transitions: 2,
    });
    const status = await statusOf(graphId);
    expect(status.job('c')).toMatchObject({ result: 'cancelled', reason: 'superseded' });
    expect(status.job('c').runs[0]).toMatchObject({
      state: 'done',
      result: 'cancelled',
      reason: 'superseded',
    });
    expect(status.job('later').state).toBe('inactive');
    expect(status.graph).toMatchObject({ state: 'done', result: 'cancelled' });
    expect(await scheduler.heartbeat({ runId: c.runId, minionId: minion.id, leaseMs: LEASE })).toBe(
      'stop',
    );
    expect(
      await scheduler.finishRun({ runId: c.runId, minionId: minion.id, result: 'success' }),
    ).toBe('refused');
    expect(await scheduler.cancel({ graphId })).toEqual({
      ok: false,
      reason: 'nothing to cancel: every active job is done',
    });
  });

  it('activates an inactive job and the inactive jobs it needs', async () => {
    const tag = freshTag();
    const { graphId } = await create(
      graphSpec('backfill', [
        job('build', { requires: [tag] }),
        job('pgo-profile', { requires: [tag], inactive: true, needs: ['build'] }),
        job('pgo-build', { requires: [tag], inactive: true, needs: ['pgo-profile'] }),
        job('pgo-other', { requires: [tag], inactive: true }),
      ]),
    );
    const minion = await newMinion([tag]);
    const build = (await claim(minion))!;
    await scheduler.finishRun({ runId: build.runId, minionId: minion.id, result: 'success' });
    expect((await statusOf(graphId)).graph).toMatchObject({ state: 'done', result: 'success' });

    const target = (await statusOf(graphId)).job('pgo-build').id;
    expect(await scheduler.activate({ jobId: target })).toMatchObject({ ok: true });
    expect(await states(graphId)).toEqual({
      build: 'done success',
      'pgo-build': 'blocked',
      'pgo-other': 'inactive',
      'pgo-profile': 'pending',
    });
    expect((await statusOf(graphId)).graph.state).toBe('running');
    for (let c = await claim(minion); c; c = await claim(minion)) {
      expect(c.cause).toBe('scheduled');
      await scheduler.finishRun({ runId: c.runId, minionId: minion.id, result: 'success' });
    }
    expect((await states(graphId))['pgo-build']).toBe('done success');
    expect((await statusOf(graphId)).graph).toMatchObject({ state: 'done', result: 'success' });
    expect(await scheduler.activate({ jobId: target })).toMatchObject({ ok: false });
    expect(await scheduler.activate({ jobId: 987_654_321 })).toMatchObject({ ok: false });
  });

  it('refuses a heartbeat or a finish for a run that is not the caller’s, changing nothing', async () => {
    const tag = freshTag();
    const { graphId } = await create(graphSpec('mine', [job('a', { requires: [tag] })]));
    const owner = await newMinion([tag]);
    const stranger = await newMinion([tag]);
    const run = (await claim(owner, 10_000))!;
    const before = await scheduler.graphStatus({ graphId });

    clock.advance(1);
    expect(
      await scheduler.heartbeat({ runId: run.runId, minionId: stranger.id, leaseMs: LEASE }),
    ).toBe('stop');
    expect(await scheduler.touchOutput({ runId: run.runId, minionId: stranger.id })).toBe('stop');
    expect(
      await scheduler.finishRun({ runId: run.runId, minionId: stranger.id, result: 'failure' }),
    ).toBe('refused');
    expect(
      await scheduler.finishRun({ runId: 987_654_321, minionId: owner.id, result: 'success' }),
    ).toBe('refused');
    expect(await scheduler.graphStatus({ graphId })).toEqual(before);

    // The owner's heartbeat extends the lease.
    expect(
      await scheduler.heartbeat({ runId: run.runId, minionId: owner.id, leaseMs: 10_000 }),
    ).toEqual({ leaseExpiresAt: new Date(clock.now().getTime() + 10_000) });
    clock.advance(9); // 10 s after the claim: the first lease would have lapsed
    expect(await scheduler.expireLeases()).toBe(0);
    expect(
      await scheduler.finishRun({ runId: run.runId, minionId: owner.id, result: 'success' }),
    ).toBe('ok');
    expect(
      await scheduler.finishRun({ runId: run.runId, minionId: owner.id, result: 'success' }),
    ).toBe('refused');
  });

  it('stores a 10,000-job graph in a handful of statements, and a finish reads only its reach', async () => {
    const tag = freshTag();
    const count = 10_000;
    const label = (i: number) => `j${String(i).padStart(5, '0')}`;
    // A binary tree: each job needs its parent.
    const jobs = Array.from({ length: count }, (_, i) =>
      job(label(i), { requires: [tag], ...(i > 0 ? { needs: [label((i - 1) >> 1)] } : {}) }),
    );
    const counting = countingDb(database);
    const counted = createScheduler({ db: counting.db, clock, leaseClock: clock });
    const eventId = await newEvent();
    const started = performance.now();
    const { graphId, jobCount } = await counted.createGraph({
      repositoryId: 10,
      eventId,
      spec: graphSpec('huge', jobs),
      trust: 'trusted',
    });
    const elapsed = performance.now() - started;
    graphsOfTest.push(graphId);
    expect(jobCount).toBe(count);
    // 10 job inserts, 10 edge inserts, the graph, the tag set, a few reads.
    expect(counting.count()).toBeLessThan(40);
    expect(elapsed).toBeLessThan(20_000);

    const minion = await newMinion([tag]);
    const root = (await counted.claim({ minionId: minion.id, leaseMs: LEASE }))!;
    expect(root.label).toBe(label(0));
    const before = counting.count();
    await counted.finishRun({ runId: root.runId, minionId: minion.id, result: 'success' });
    expect(counting.count() - before).toBeLessThan(15);
    const next = await Promise.all([
      counted.claim({ minionId: minion.id, leaseMs: LEASE }),
      counted.claim({ minionId: minion.id, leaseMs: LEASE }),
    ]);
    expect(next.map((c) => c?.label).sort()).toEqual([label(1), label(2)]);
  });
});

describe.each(backends())('leases on $name', (backend) => {
  let database: TestDatabase;
  /** The lease clock of the outage tests; the skew test uses the database's. */
  const clock = manualClock(new Date('2026-06-01T00:00:00Z'));
  const graphsOfTest: { graphId: number; scheduler: Scheduler }[] = [];
  let minionCounter = 0;

  beforeAll(async () => {
    database = await backend.open();
    await insertRepositoryFixture(database.db);
  });
  afterAll(async () => {
    await database.dispose();
  });
  afterEach(async () => {
    for (const { graphId, scheduler } of graphsOfTest.splice(0))
      await scheduler.cancel({ graphId });
  });

  /** Jobs `labels`, each requiring `tag`, in a graph of their own. */
  async function create(scheduler: Scheduler, tag: string, labels: string[]) {
    const { graphId } = await scheduler.createGraph({
      repositoryId: 10,
      eventId: await insertEvent(database.db),
      spec: graphSpec(
        'leases',
        labels.map((label) => job(label, { requires: [tag] })),
      ),
      trust: 'trusted',
    });
    graphsOfTest.push({ graphId, scheduler });
    return graphId;
  }

  /** A minion with `exceptions` counted toward its quarantine already. */
  async function newMinion(tags: string[], exceptions = 0) {
    const n = ++minionCounter;
    const [row] = await database.db
      .insert(minions)
      .values({
        name: `lease-minion-${n}`,
        tags,
        credentialHash: `lease-hash-${n}`,
        consecutiveExceptions: exceptions,
      })
      .returning({ id: minions.id });
    return { id: row!.id };
  }

  const minionRow = async (id: number) =>
    (await database.db.select().from(minions).where(eq(minions.id, id)))[0]!;

  async function databaseNow(): Promise<Date> {
    const result: unknown = await database.db.execute(sql`select now() as now`);
    const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as {
      now: Date | string;
    }[];
    return new Date(rows[0]!.now);
  }

  async function runOf(scheduler: Scheduler, graphId: number, label: string) {
    const status = (await scheduler.graphStatus({ graphId }))!;
    return status.jobs.find((j) => j.label === label)!.runs.at(-1)!;
  }

  it('times leases by the database’s clock: a replica an hour off neither ends others’ leases early nor keeps its own late', async () => {
    const skewed = (seconds: number) => ({ now: () => new Date(Date.now() + seconds * 1000) });
    const ahead = createScheduler({ db: database.db, clock: skewed(3600) });
    const behind = createScheduler({ db: database.db, clock: skewed(-3600) });
    const graphId = await create(behind, 'skew', ['build']);
    const minion = await newMinion(['skew']);

    const before = await databaseNow();
    const run = (await behind.claim({ minionId: minion.id, leaseMs: LEASE }))!;
    const after = await databaseNow();
    // The lease runs from the database's now, not from the claiming replica's.
    expect(run.leaseExpiresAt.getTime()).toBeGreaterThanOrEqual(before.getTime() + LEASE);
    expect(run.leaseExpiresAt.getTime()).toBeLessThanOrEqual(after.getTime() + LEASE);
    // The replica an hour ahead sees nothing lapsed.
    expect(await ahead.expireLeases()).toBe(0);
    expect(await runOf(ahead, graphId, 'build')).toMatchObject({ state: 'running' });

    // Renewed through the replica ahead for a moment only, the lease lapses a moment
    // later for the replica an hour behind: not an hour late.
    const beat = await ahead.heartbeat({ runId: run.runId, minionId: minion.id, leaseMs: 100 });
    expect(beat).not.toBe('stop');
    await vi.waitFor(async () => expect(await behind.expireLeases()).toBe(1), {
      timeout: 10_000,
      interval: 50,
    });
    expect(await runOf(behind, graphId, 'build')).toMatchObject({
      state: 'done',
      result: 'exception',
      reason: 'claim-expired',
    });
  });

  it('keeps the leases that lapsed while the database was down until their minions could heartbeat, and ends the rest without counting them toward quarantine', async () => {
    const scheduler = createScheduler({ db: database.db, clock, leaseClock: clock });
    const GRACE = 10;
    const GAP = 30;
    /** One maintenance pass: `outage` when this replica's earlier passes failed. */
    const pass = async (outage = false) => {
      await scheduler.watchLeases({ outage, gapSeconds: GAP });
      return scheduler.expireLeases({ graceSeconds: GRACE });
    };
    const graphId = await create(scheduler, 'outage', ['kept', 'lost']);
    const alive = await newMinion(['outage'], 1);
    const dead = await newMinion(['outage'], 1);
    expect(await pass()).toBe(0);
    clock.advance(GRACE);
    expect(await pass()).toBe(0);
    const kept = (await scheduler.claim({ minionId: alive.id, leaseMs: 10_000 }))!;
    const lost = (await scheduler.claim({ minionId: dead.id, leaseMs: 10_000 }))!;
    expect([kept.label, lost.label].sort()).toEqual(['kept', 'lost']);

    clock.advance(5);
    expect(await pass()).toBe(0);
    // The database is down for 20 s: passes and heartbeats fail, both leases lapse.
    clock.advance(20);
    // The first pass that reaches it again says its predecessors failed: nothing ends.
    expect(await pass(true)).toBe(0);
    clock.advance(3);
    const renewed = await scheduler.heartbeat({
      runId: kept.runId,
      minionId: alive.id,
      leaseMs: 10_000,
    });
    expect(renewed).toEqual({ leaseExpiresAt: new Date(clock.now().getTime() + 10_000) });
    expect(await pass()).toBe(0);
    // A grace after the database came back: the minion that did not heartbeat loses its run.
    clock.advance(GRACE - 3);
    expect(await pass()).toBe(1);
    expect(await runOf(scheduler, graphId, kept.label)).toMatchObject({ state: 'running' });
    expect(await runOf(scheduler, graphId, lost.label)).toMatchObject({
      state: 'done',
      result: 'exception',
      reason: 'claim-expired',
    });
    // Neither minion's count moved: a lapsed lease is not the minion's exception.
    for (const minion of [alive, dead]) {
      expect(await minionRow(minion.id)).toMatchObject({
        state: 'active',
        consecutiveExceptions: 1,
      });
    }
    expect(
      await scheduler.finishRun({ runId: kept.runId, minionId: alive.id, result: 'success' }),
    ).toBe('ok');
  });

  it('counts a stretch with no pass of any replica as an outage too', async () => {
    const scheduler = createScheduler({ db: database.db, clock, leaseClock: clock });
    const GRACE = 10;
    const GAP = 30;
    const pass = async () => {
      await scheduler.watchLeases({ outage: false, gapSeconds: GAP });
      return scheduler.expireLeases({ graceSeconds: GRACE });
    };
    const graphId = await create(scheduler, 'gap', ['kept', 'lost']);
    const alive = await newMinion(['gap']);
    const dead = await newMinion(['gap']);
    clock.advance(GRACE);
    expect(await pass()).toBe(0);
    const kept = (await scheduler.claim({ minionId: alive.id, leaseMs: 10_000 }))!;
    const lost = (await scheduler.claim({ minionId: dead.id, leaseMs: 10_000 }))!;

    // Every replica was down (or stalled) for longer than the gap: nobody passed.
    clock.advance(GAP + 1);
    expect(await pass()).toBe(0);
    clock.advance(2);
    expect(
      await scheduler.heartbeat({ runId: kept.runId, minionId: alive.id, leaseMs: 10_000 }),
    ).not.toBe('stop');
    clock.advance(GRACE - 2);
    expect(await pass()).toBe(1);
    expect(await runOf(scheduler, graphId, kept.label)).toMatchObject({ state: 'running' });
    expect(await runOf(scheduler, graphId, lost.label)).toMatchObject({
      reason: 'claim-expired',
    });
  });

  it('has the maintenance pass that reaches the database after failed passes hold lapsed leases for a lease', async () => {
    const scheduler = createScheduler({ db: database.db, clock, leaseClock: clock });
    let down = false;
    const unreachable = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
    // The scheduler as a replica sees it while the database is down: every call fails.
    const maintenance = createMaintenance({
      scheduler: {
        watchLeases: (input) => (down ? unreachable() : scheduler.watchLeases(input)),
        expireLeases: (input) => (down ? unreachable() : scheduler.expireLeases(input)),
        enforceTimeouts: () => (down ? unreachable() : scheduler.enforceTimeouts()),
      },
      logger: createLogger({ level: 'silent' }),
      intervalMs: 5000,
      leaseSeconds: 10,
    });
    const graphId = await create(scheduler, 'failed-passes', ['kept', 'lost']);
    const alive = await newMinion(['failed-passes']);
    const dead = await newMinion(['failed-passes']);
    clock.advance(10);
    await maintenance.tick();
    const kept = (await scheduler.claim({ minionId: alive.id, leaseMs: 10_000 }))!;
    const lost = (await scheduler.claim({ minionId: dead.id, leaseMs: 10_000 }))!;

    // Passes every 5 s; the database is down for two of them: never a gap of 15 s.
    clock.advance(5);
    await maintenance.tick();
    down = true;
    for (let i = 0; i < 2; i++) {
      clock.advance(5);
      await expect(maintenance.tick()).rejects.toThrow('ECONNREFUSED');
    }
    down = false;
    clock.advance(1);
    // Both leases lapsed 1 s ago; the minions have had no chance to heartbeat.
    expect(await maintenance.tick()).toEqual({ expiredLeases: 0, timeouts: 0 });
    clock.advance(2);
    expect(
      await scheduler.heartbeat({ runId: kept.runId, minionId: alive.id, leaseMs: 10_000 }),
    ).not.toBe('stop');
    clock.advance(8);
    expect(await maintenance.tick()).toEqual({ expiredLeases: 1, timeouts: 0 });
    expect(await runOf(scheduler, graphId, kept.label)).toMatchObject({ state: 'running' });
    expect(await runOf(scheduler, graphId, lost.label)).toMatchObject({
      reason: 'claim-expired',
    });
  });
});
