import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMinionQueries } from '../src/db/minions.js';
import { chunkCount, chunkJobs, chunkRange, worstOutcome } from '../src/graph/chunks.js';
import type { JobResult, JobSpec } from '../src/lib/graph-spec.js';
import { createScheduler, type Scheduler } from '../src/scheduler/scheduler.js';
import { backends, type TestDatabase } from './support/databases.js';
import { insertRepositoryFixture } from './support/fixtures.js';
import { job } from './support/graph-specs.js';
import {
  graphHelpers,
  graphSpec,
  insertMinion,
  manualClock,
  runsOf,
  type TestMinion,
} from './support/scheduler-harness.js';

const LEASE = 60_000;

/** A range job: one shard per chunk. */
function rangeJob(label: string, tag: string, options: Partial<JobSpec> & { needs?: string[] }) {
  return job(label, {
    requires: [tag],
    command: 'npm test -- --shard ${{ chunk }}/${{ chunks }}',
    env: { SHARD: '${{ chunk }} of ${{ chunks }}', CI: 'true' },
    chunk: { min: 1, max: 8 },
    ...options,
  });
}

describe('range chunks, pure', () => {
  const range = rangeJob('test', 'linux', {
    needs: ['build'],
    chunk: { min: 2, max: 4 },
    priority: 7,
    maxRuntime: 600,
    artifacts: ['coverage/**'],
  });

  it('count the idle minions, clamped to [min, max]', () => {
    expect(chunkRange(range)).toEqual({ min: 2, max: 4 });
    expect(chunkRange(job('fixed', { chunk: { index: 1, count: 2 } }))).toBeNull();
    expect(chunkRange(job('plain'))).toBeNull();
    expect(chunkRange(job('notify', { kind: 'notify' }))).toBeNull();
    expect([0, 1, 2, 3, 4, 9].map((idle) => chunkCount({ min: 2, max: 4 }, idle))).toEqual([
      2, 2, 2, 3, 4, 4,
    ]);
  });

  it('become command jobs of their own, with chunk and chunks substituted', () => {
    const chunks = chunkJobs(range, 3);
    expect(chunks.map((c) => c.label)).toEqual(['test/1', 'test/2', 'test/3']);
    expect(chunks[1]).toEqual({
      ...range,
      label: 'test/2',
      command: 'npm test -- --shard 2/3',
      env: { SHARD: '2 of 3', CI: 'true' },
      chunk: { index: 2, count: 3 },
    });
    // The range job's dependencies, for the minions (the state machine ignores them).
    expect(chunks[1]!.dependencies).toEqual([{ job: 'build', results: ['success', 'warning'] }]);
    // Nothing else is substituted: other names were substituted when the graph was built.
    expect(chunkJobs({ ...range, command: null, env: { X: '${{ sha }}' } }, 1)[0]).toMatchObject({
      command: null,
      env: { X: '${{ sha }}' },
    });
  });

  it('end with the worst result, the first chunk among equals', () => {
    const outcome = (result: JobResult, chunk: number) => ({ result, chunk });
    expect(worstOutcome([])).toBeUndefined();
    expect(worstOutcome([outcome('success', 1), outcome('warning', 2)])).toEqual(
      outcome('warning', 2),
    );
    expect(
      worstOutcome([
        outcome('skipped', 1),
        outcome('cancelled', 2),
        outcome('exception', 3),
        outcome('timed-out', 4),
        outcome('timed-out', 5),
      ]),
    ).toEqual(outcome('timed-out', 4));
    expect(worstOutcome([outcome('timed-out', 1), outcome('failure', 2)])).toEqual(
      outcome('failure', 2),
    );
    expect(worstOutcome([outcome('success', 1), outcome('skipped', 2)])).toEqual(
      outcome('skipped', 2),
    );
  });
});

describe.each(backends())('range chunks on $name', (backend) => {
  let database: TestDatabase;
  let scheduler: Scheduler;
  const clock = manualClock(new Date('2026-04-01T00:00:00Z'));
  let tagCounter = 0;
  const graphs = graphHelpers(
    () => scheduler,
    () => database.db,
  );
  const freshTag = () => `r${++tagCounter}`;

  beforeAll(async () => {
    database = await backend.open();
    scheduler = createScheduler({ db: database.db, clock });
    await insertRepositoryFixture(database.db);
  });
  afterAll(async () => {
    await database.dispose();
  });
  afterEach(async () => {
    await graphs.cleanUp();
  });

  /** Minions with the tags, seen just now. */
  async function idleMinions(count: number, tags: string[]): Promise<TestMinion[]> {
    const out: TestMinion[] = [];
    for (let i = 0; i < count; i++) {
      out.push(await insertMinion(database.db, tags, { lastSeenAt: clock.now() }));
    }
    return out;
  }

  async function claim(minion: TestMinion) {
    return scheduler.claim({ minionId: minion.id, leaseMs: LEASE });
  }

  /** Claims the minion's next job and finishes it; its label. */
  async function finish(
    minion: TestMinion,
    result: JobResult,
    reason: 'max-runtime' | null = null,
  ): Promise<string> {
    const claimed = (await claim(minion))!;
    await scheduler.finishRun({ runId: claimed.runId, minionId: minion.id, result, reason });
    return claimed.label;
  }

  it('materialise one chunk per idle eligible minion, and run only the chunks', async () => {
    const tag = freshTag();
    // Busy: it runs another graph's job.
    const busy = await insertMinion(database.db, [tag], { lastSeenAt: clock.now() });
    await graphs.create(graphSpec('busy', [job('other', { requires: [tag] })]));
    expect((await claim(busy))!.label).toBe('other');
    const idle = await idleMinions(3, [tag, 'extra']);
    // Not eligible: without the tag, not seen for two minutes, quarantined, never seen, untrusted.
    await insertMinion(database.db, ['extra'], { lastSeenAt: clock.now() });
    await insertMinion(database.db, [tag], {
      lastSeenAt: new Date(clock.now().getTime() - 120_000),
    });
    await insertMinion(database.db, [tag], { lastSeenAt: clock.now(), state: 'quarantined' });
    await insertMinion(database.db, [tag]);
    const untrusted = await insertMinion(database.db, [tag], {
      lastSeenAt: clock.now(),
      trust: 'untrusted',
    });

    const { graphId } = await graphs.create(
      graphSpec('shards', [
        rangeJob('test', tag, { priority: 5, retries: 2, maxRuntime: 300, artifacts: ['out/**'] }),
      ]),
    );
    const status = await graphs.status(graphId);
    const test = status.job('test');
    expect(await graphs.states(graphId)).toEqual({
      test: 'running',
      'test/1': 'pending',
      'test/2': 'pending',
      'test/3': 'pending',
    });
    expect(test).toMatchObject({ parentJobId: null, chunk: { min: 1, max: 8 }, runs: [] });
    for (const k of [1, 2, 3]) {
      expect(status.job(`test/${k}`)).toMatchObject({
        kind: 'command',
        parentJobId: test.id,
        chunk: { index: k, count: 3 },
        priority: 5,
        retries: 2,
      });
    }

    const claims = [];
    for (const minion of idle) claims.push((await claim(minion))!);
    expect(claims.map((c) => c.label).sort()).toEqual(['test/1', 'test/2', 'test/3']);
    const first = claims.find((c) => c.label === 'test/1')!;
    expect(first.job).toMatchObject({
      label: 'test/1',
      command: 'npm test -- --shard 1/3',
      env: { SHARD: '1 of 3', CI: 'true' },
      requires: [tag],
      maxRuntime: 300,
      artifacts: ['out/**'],
      chunk: { index: 1, count: 3 },
      dependencies: [],
    });
    // The range job itself is never handed out.
    expect(await claim(busy)).toBeUndefined();

    // An untrusted graph counts the untrusted minions, and queues its chunks for them.
    const other = await graphs.create(graphSpec('untrusted', [rangeJob('test', tag, {})]), {
      trust: 'untrusted',
    });
    expect(await graphs.states(other.graphId)).toEqual({ test: 'running', 'test/1': 'pending' });
    expect((await claim(untrusted))!).toMatchObject({
      graphId: other.graphId,
      label: 'test/1',
    });
  });

  it('are at least min and at most max', async () => {
    const none = freshTag();
    const few = await graphs.create(
      graphSpec('few', [rangeJob('test', none, { chunk: { min: 2, max: 4 } })]),
    );
    expect(Object.keys(await graphs.states(few.graphId))).toEqual(['test', 'test/1', 'test/2']);

    const many = freshTag();
    await idleMinions(6, [many]);
    const lots = await graphs.create(
      graphSpec('lots', [rangeJob('test', many, { chunk: { min: 1, max: 4 } })]),
    );
    expect((await graphs.status(lots.graphId)).jobs.map((j) => j.label)).toEqual([
      'test',
      'test/1',
      'test/2',
      'test/3',
      'test/4',
    ]);
  });

  it('read their upstreams, end with the worst result, and let the dependents move on', async () => {
    const tag = freshTag();
    const [m1, m2] = await idleMinions(2, [tag]);
    const { graphId } = await graphs.create(
      graphSpec('pipeline', [
        job('build', { requires: [tag] }),
        rangeJob('test', tag, { needs: ['build'] }),
        job('report', { kind: 'dummy', needs: ['test'] }),
        job('always', { kind: 'dummy', needs: { test: 'finished' } }),
        job('publish', { requires: [tag], needs: ['test'] }),
      ]),
    );
    expect(await graphs.states(graphId)).toMatchObject({ build: 'pending', test: 'blocked' });
    expect(await finish(m1!, 'success')).toBe('build');
    let status = await graphs.status(graphId);
    expect(await graphs.states(graphId)).toMatchObject({
      test: 'running',
      'test/1': 'pending',
      'test/2': 'pending',
    });
    // Each chunk has the range job's upstream edges: a minion gets build's manifest.
    const buildRun = status.job('build').runs[0]!.id;
    const queries = createMinionQueries(database.db);
    for (const k of [1, 2]) {
      expect(await queries.upstreamRuns(status.job(`test/${k}`).id)).toEqual([
        { label: 'build', runId: buildRun },
      ]);
    }

    const c1 = (await claim(m1!))!;
    const c2 = (await claim(m2!))!;
    expect(c1.job.dependencies).toEqual([{ job: 'build', results: ['success', 'warning'] }]);
    await scheduler.finishRun({ runId: c1.runId, minionId: m1!.id, result: 'warning' });
    expect((await graphs.status(graphId)).job('test').state).toBe('running');
    await scheduler.finishRun({
      runId: c2.runId,
      minionId: m2!.id,
      result: 'timed-out',
      reason: 'max-runtime',
    });
    status = await graphs.status(graphId);
    expect(await graphs.states(graphId)).toEqual({
      always: 'done success',
      build: 'done success',
      publish: 'done skipped dependency-result',
      report: 'done skipped dependency-result',
      test: 'done timed-out max-runtime',
      [c1.label]: 'done warning',
      [c2.label]: 'done timed-out max-runtime',
    });
    expect(status.graph).toMatchObject({ state: 'done', result: 'failure' });

    // Retrigger of the failed chunk: the range job and its dependents reopen, the other chunk stays.
    const failed = status.job(c2.label);
    expect(await scheduler.retrigger({ jobId: failed.id })).toMatchObject({ ok: true });
    expect(await graphs.states(graphId)).toEqual({
      always: 'blocked',
      build: 'done success',
      publish: 'blocked',
      report: 'blocked',
      test: 'running',
      [c1.label]: 'done warning',
      [c2.label]: 'pending',
    });
    expect((await graphs.status(graphId)).graph.state).toBe('running');
    const again = (await claim(m2!))!;
    expect(again).toMatchObject({ label: c2.label, attempt: 2, cause: 'retrigger' });
    // The chunk keeps its spec: the count does not change with a chunk's retrigger.
    expect(again.job.chunk).toEqual(failed.chunk);
    await scheduler.finishRun({ runId: again.runId, minionId: m2!.id, result: 'success' });
    expect(await graphs.states(graphId)).toMatchObject({
      always: 'done success',
      publish: 'pending',
      report: 'done success',
      test: 'done warning',
    });
    // A job that needs the range job reads its chunks' latest runs.
    const latest = (label: string) => status.job(label).runs.at(-1)!.id;
    status = await graphs.status(graphId);
    expect(await queries.upstreamRuns(status.job('publish').id)).toEqual([
      { label: 'test/1', runId: latest('test/1') },
      { label: 'test/2', runId: latest('test/2') },
    ]);
    expect(await finish(m1!, 'success')).toBe('publish');
    expect((await graphs.status(graphId)).graph).toMatchObject({
      state: 'done',
      result: 'success',
    });
  });

  it('materialise again on a retrigger of the range job, reusing labels and keeping history', async () => {
    const tag = freshTag();
    const minions = await idleMinions(2, [tag]);
    const { graphId } = await graphs.create(
      graphSpec('again', [
        rangeJob('test', tag, {}),
        job('after', { kind: 'dummy', needs: ['test'] }),
      ]),
    );
    const runAll = async () => {
      for (;;) {
        const label = await Promise.all(minions.map((m) => finishIfAny(m)));
        if (label.every((l) => l === undefined)) return;
      }
    };
    const finishIfAny = async (minion: TestMinion) => {
      const claimed = await claim(minion);
      if (!claimed) return undefined;
      await scheduler.finishRun({ runId: claimed.runId, minionId: minion.id, result: 'success' });
      return claimed.label;
    };
    await runAll();
    expect(await graphs.states(graphId)).toEqual({
      after: 'done success',
      test: 'done success',
      'test/1': 'done success',
      'test/2': 'done success',
    });

    // More minions are idle now: three chunks, two of them the same jobs as before.
    minions.push(...(await idleMinions(1, [tag])));
    const test = (await graphs.status(graphId)).job('test');
    expect(await scheduler.retrigger({ jobId: test.id })).toMatchObject({ ok: true });
    let status = await graphs.status(graphId);
    expect(await graphs.states(graphId)).toEqual({
      after: 'blocked',
      test: 'running',
      'test/1': 'pending',
      'test/2': 'pending',
      'test/3': 'pending',
    });
    expect(status.job('test/1').chunk).toEqual({ index: 1, count: 3 });
    const first = (await claim(minions[0]!))!;
    expect(first).toMatchObject({ cause: 'retrigger' });
    expect(first.job.command).toMatch(/--shard \d\/3$/);
    await scheduler.finishRun({ runId: first.runId, minionId: minions[0]!.id, result: 'success' });
    await runAll();
    status = await graphs.status(graphId);
    expect(status.job('test/1').runs.map((r) => r.cause)).toEqual(['scheduled', 'retrigger']);
    expect(status.job('test/3').runs.map((r) => r.cause)).toEqual(['retrigger']);
    expect(status.job('after').state).toBe('done');

    // Fewer: one minion is busy now, so the third chunk is left out (inactive), its run kept.
    const holder = await graphs.create(graphSpec('hold', [job('hold', { requires: [tag] })]));
    expect((await claim(minions[2]!))!.graphId).toBe(holder.graphId);
    expect(await scheduler.retrigger({ jobId: test.id })).toMatchObject({ ok: true });
    status = await graphs.status(graphId);
    expect(await graphs.states(graphId)).toEqual({
      after: 'blocked',
      test: 'running',
      'test/1': 'pending',
      'test/2': 'pending',
      'test/3': 'inactive',
    });
    expect(status.job('test/3').runs).toHaveLength(1);
    expect(await scheduler.retrigger({ jobId: status.job('test/3').id })).toEqual({
      ok: false,
      reason:
        'chunk "test/3" was left out when "test" last materialised fewer chunks; retrigger "test" instead',
    });
    expect(await scheduler.activate({ jobId: status.job('test/3').id })).toEqual({
      ok: false,
      reason:
        'job "test/3" is a chunk of "test": chunks come from their range job, they are never activated',
    });
    await Promise.all(minions.slice(0, 2).map((m) => finishIfAny(m)));
    await Promise.all(minions.slice(0, 2).map((m) => finishIfAny(m)));
    status = await graphs.status(graphId);
    expect(status.job('test')).toMatchObject({ state: 'done', result: 'success' });
    expect(status.job('after').state).toBe('done');
  });

  it('wait for a retriggered upstream, and refuse a chunk retrigger meanwhile', async () => {
    const tag = freshTag();
    const [minion] = await idleMinions(1, [tag]);
    const { graphId } = await graphs.create(
      graphSpec('upstream', [
        job('build', { requires: [tag] }),
        rangeJob('test', tag, { needs: ['build'] }),
      ]),
    );
    expect(await finish(minion!, 'success')).toBe('build');
    expect(await finish(minion!, 'failure')).toBe('test/1');
    let status = await graphs.status(graphId);
    expect(status.job('test')).toMatchObject({ state: 'done', result: 'failure' });

    expect(await scheduler.retrigger({ jobId: status.job('build').id })).toMatchObject({
      ok: true,
    });
    expect(await graphs.states(graphId)).toEqual({
      build: 'pending',
      test: 'blocked',
      'test/1': 'done failure',
    });
    status = await graphs.status(graphId);
    expect(await scheduler.retrigger({ jobId: status.job('test/1').id })).toEqual({
      ok: false,
      reason:
        'retrigger of chunk "test/1" needs its range job "test" running, or done with its dependencies met, but it is blocked: it will materialise new chunks',
    });
    expect(await finish(minion!, 'success')).toBe('build');
    expect(await graphs.states(graphId)).toEqual({
      build: 'done success',
      test: 'running',
      'test/1': 'pending',
    });
    expect(await finish(minion!, 'success')).toBe('test/1');
    expect((await graphs.status(graphId)).job('test').result).toBe('success');
    expect(await runsOf(database.db, status.job('test/1').id)).toHaveLength(2);
  });

  it('are cancelled with their range job, and end it when they time out waiting', async () => {
    const tag = freshTag();
    const [m1] = await idleMinions(2, [tag]);
    const { graphId } = await graphs.create(
      graphSpec('cancel', [
        rangeJob('test', tag, {}),
        job('after', { kind: 'dummy', needs: { test: 'any' } }),
      ]),
    );
    const running = (await claim(m1!))!;
    const test = (await graphs.status(graphId)).job('test');
    expect(await scheduler.cancel({ graphId, jobId: test.id })).toMatchObject({ ok: true });
    const status = await graphs.status(graphId);
    expect(await graphs.states(graphId)).toEqual({
      after: 'done success',
      test: 'done cancelled user-cancel',
      'test/1': 'done cancelled user-cancel',
      'test/2': 'done cancelled user-cancel',
    });
    expect(status.job(running.label).runs[0]).toMatchObject({ state: 'done', result: 'cancelled' });
    expect(
      await scheduler.heartbeat({ runId: running.runId, minionId: m1!.id, leaseMs: LEASE }),
    ).toBe('stop');

    // A chunk nobody takes ends with the request timeout's result, and the range job with it.
    const nobody = freshTag();
    const waiting = await graphs.create(
      graphSpec('waiting', [
        rangeJob('test', nobody, {
          chunk: { min: 2, max: 3 },
          requestTimeout: { seconds: 60, result: 'skipped' },
        }),
      ]),
    );
    clock.advance(60);
    expect(await scheduler.enforceTimeouts()).toBe(2);
    expect(await graphs.states(waiting.graphId)).toEqual({
      test: 'done skipped request-timeout',
      'test/1': 'done skipped request-timeout',
      'test/2': 'done skipped request-timeout',
    });

    // Cancelling the whole graph cancels the chunks too.
    const whole = await graphs.create(graphSpec('whole', [rangeJob('test', nobody, {})]));
    expect(await scheduler.cancel({ graphId: whole.graphId })).toMatchObject({ ok: true });
    expect(await graphs.states(whole.graphId)).toEqual({
      test: 'done cancelled user-cancel',
      'test/1': 'done cancelled user-cancel',
    });
    expect((await graphs.status(whole.graphId)).graph).toMatchObject({
      state: 'done',
      result: 'cancelled',
    });
  });
});
