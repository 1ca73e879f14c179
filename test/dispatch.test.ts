/**
 * Dispatch: trust at claim time, quarantine and
 * release, warm-cache and avoid-minion preferences, targeted wake-ups, and
 * the claim statement under concurrent claimers, on both backends.
 */
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { minionsCommand } from '../src/cli/minion-admin.js';
import * as schema from '../src/db/schema.js';
import { minions, warmMinions } from '../src/db/schema.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { createTower, type Tower } from '../src/main.js';
import { createMinionAdmin } from '../src/minions/admin.js';
import { createFileArtifactStore } from '../src/minions/artifact-store.js';
import {
  createInProcessNotifier,
  createPostgresNotifier,
  decodeClaimable,
  encodeClaimable,
  Waiters,
  type Claimable,
  type Notifier,
} from '../src/minions/notifier.js';
import { createMinionProtocol, type Minion, type MinionProtocol } from '../src/minions/protocol.js';
import { createRunSignals } from '../src/minions/run-signals.js';
import {
  acceptsTagSet,
  createScheduler,
  InactiveMinionError,
  tagSetKey,
  type Scheduler,
} from '../src/scheduler/scheduler.js';
import { inProcessConfig } from './support/config.js';
import { operatorToken } from './support/access.js';
import { backends, type TestDatabase } from './support/databases.js';
import { FIXTURE_REPOSITORY_ID, insertEvent, insertRepositoryFixture } from './support/fixtures.js';
import { job } from './support/graph-specs.js';

const TOKEN = 'registration-token-0123456789';
const UNTRUSTED_TOKEN = 'untrusted-registration-token-0123456789';
const RESTRICTED_TOKEN = 'restricted-registration-token-0123456789';
const LEASE = 60_000;
const logger = createLogger({ level: 'silent' });

function graphSpec(name: string, jobs: JobSpec[], branch = 'main'): GraphSpec {
  return {
    version: GRAPH_SPEC_VERSION,
    graph: name,
    event: { type: 'push', branch, sha: 'c'.repeat(40), changedFiles: null },
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('tag set keys and eligibility', () => {
  it('queues untrusted graphs apart, and matches minions by tags and trust', () => {
    expect(tagSetKey(['node', 'linux', 'node'])).toBe('linux,node');
    expect(tagSetKey(['node', 'linux'], 'untrusted')).toBe('untrusted:linux,node');
    const trusted = { tags: ['linux', 'node', 'x64'], trust: 'trusted' as const };
    const untrusted = { tags: ['linux', 'node'], trust: 'untrusted' as const };
    const restricted = { tags: ['signing'], trust: 'restricted' as const };
    expect(acceptsTagSet(trusted, 'linux,node')).toBe(true);
    expect(acceptsTagSet(trusted, 'linux,gpu')).toBe(false);
    expect(acceptsTagSet(trusted, 'untrusted:linux,node')).toBe(false);
    expect(acceptsTagSet(untrusted, 'untrusted:linux,node')).toBe(true);
    expect(acceptsTagSet(untrusted, 'linux,node')).toBe(false);
    expect(acceptsTagSet(restricted, 'signing')).toBe(true);
    expect(acceptsTagSet(restricted, 'untrusted:signing')).toBe(false);
    // A job that requires nothing: every minion of the queue's trust has its (empty) tag set.
    expect(acceptsTagSet(trusted, '')).toBe(true);
    expect(acceptsTagSet(untrusted, 'untrusted:')).toBe(true);
  });
});

describe('targeted wake-ups (the waiters of one process)', () => {
  const accepting = (...keys: string[]) => ({ accepts: (key: string) => keys.includes(key) });

  function waiter(waiters: Waiters, interest?: Parameters<Waiters['add']>[1]) {
    const heard: Claimable[] = [];
    const subscription = waiters.add((claimable) => heard.push(claimable), interest);
    return { heard, subscription };
  }

  it('wakes one sleeping waiter of each named set, the one waiting longest, and none of other sets', () => {
    const waiters = new Waiters();
    const a1 = waiter(waiters, accepting('a'));
    const a2 = waiter(waiters, accepting('a', 'b'));
    const b1 = waiter(waiters, accepting('b'));
    for (const w of [a1, a2, b1]) w.subscription.ready();
    waiters.wake(['a']);
    expect([a1.heard, a2.heard, b1.heard]).toEqual([[['a']], [], []]);
    // a1 was woken (and is busy): the next notification for `a` goes to a2.
    waiters.wake(['a']);
    expect(a2.heard).toEqual([['a']]);
    expect(b1.heard).toEqual([]);
    // One notification naming two sets wakes one waiter for each: a2 waits on `b` too.
    a1.subscription.ready();
    a2.subscription.ready();
    waiters.wake(['a', 'b', 'c']);
    expect(a1.heard).toEqual([['a'], ['a']]);
    expect(a2.heard).toEqual([['a'], ['b']]);
    expect(b1.heard).toEqual([]);
    waiters.wake(['b']);
    expect(b1.heard).toEqual([['b']]);
    expect(waiters.size).toBe(3);
  });

  it('passes a wake-up on to two more waiters, and lets a busy waiter stand in when none sleeps', () => {
    const waiters = new Waiters();
    const all = Array.from({ length: 5 }, () => waiter(waiters, accepting('a')));
    for (const w of all) w.subscription.ready();
    waiters.wake(['a']);
    expect(all.map((w) => w.heard.length)).toEqual([1, 0, 0, 0, 0]);
    // The first took a job: more may wait, two more waiters try.
    all[0]!.subscription.pass(['a']);
    expect(all.map((w) => w.heard.length)).toEqual([1, 1, 1, 0, 0]);

    // Everyone busy claiming (none called ready): one of them still hears it.
    const busy = new Waiters();
    const claiming = waiter(busy, accepting('a'));
    busy.wake(['a']);
    expect(claiming.heard).toEqual([['a']]);
  });

  it('always wakes picky (restricted) waiters, waiters without an interest, and everyone for `all`', () => {
    const waiters = new Waiters();
    const picky = waiter(waiters, { ...accepting('a'), picky: true });
    const ordinary = waiter(waiters, accepting('a'));
    const other = waiter(waiters, accepting('b'));
    const everything = waiter(waiters);
    for (const w of [picky, ordinary, other, everything]) w.subscription.ready();
    waiters.wake(['a']);
    expect([picky, ordinary, other, everything].map((w) => w.heard)).toEqual([
      [['a']],
      [['a']],
      [],
      [['a']],
    ]);
    waiters.wake('all');
    expect(other.heard).toEqual(['all']);
    // A waiter that joins later is queued for the sets already seen; a closed one hears nothing.
    const late = waiter(waiters, accepting('b'));
    late.subscription.ready();
    other.subscription.close();
    waiters.wake(['b']);
    expect(late.heard).toEqual([['b']]);
    expect(other.heard).toEqual(['all']);
    waiters.clear();
    expect(waiters.size).toBe(0);
  });

  it('encodes the sets as the NOTIFY payload, falling back to `all`', () => {
    expect(encodeClaimable(['linux,node', 'untrusted:linux'])).toBe(
      '["linux,node","untrusted:linux"]',
    );
    expect(decodeClaimable('["linux,node","untrusted:linux"]')).toEqual([
      'linux,node',
      'untrusted:linux',
    ]);
    expect(encodeClaimable('all')).toBe('all');
    expect(encodeClaimable(Array.from({ length: 2000 }, (_, i) => `tag-${i}`))).toBe('all');
    for (const payload of [undefined, '', 'all', '[1,2]', '[not json', '{"a":1}']) {
      expect(decodeClaimable(payload)).toBe('all');
    }
  });
});

describe.each(backends())('dispatch on $name', (backend) => {
  let database: TestDatabase;
  let scheduler: Scheduler;
  const clock = manualClock(new Date('2026-03-01T00:00:00Z'));
  let minionCounter = 0;
  let tagCounter = 0;
  const graphsOfTest: number[] = [];

  beforeAll(async () => {
    database = await backend.open();
    scheduler = createScheduler({ db: database.db, clock });
    await insertRepositoryFixture(database.db);
  });
  afterAll(async () => {
    await database.dispose();
  });
  afterEach(async () => {
    for (const graphId of graphsOfTest.splice(0)) await scheduler.cancel({ graphId });
  });

  const freshTag = () => `d${++tagCounter}`;

  async function newMinion(
    tags: string[],
    options: Partial<typeof minions.$inferInsert> = {},
  ): Promise<{ id: number }> {
    const n = ++minionCounter;
    const [row] = await database.db
      .insert(minions)
      .values({ name: `minion-${n}`, tags, credentialHash: `dispatch-${n}`, ...options })
      .returning({ id: minions.id });
    return { id: row!.id };
  }

  async function create(
    spec: GraphSpec,
    options: { trust?: 'trusted' | 'untrusted'; protectedBranch?: boolean } = {},
    on: Scheduler = scheduler,
  ) {
    const created = await on.createGraph({
      repositoryId: FIXTURE_REPOSITORY_ID,
      eventId: await insertEvent(database.db),
      spec,
      trust: options.trust ?? 'trusted',
      ...(options.protectedBranch === undefined
        ? {}
        : { protectedBranch: options.protectedBranch }),
    });
    graphsOfTest.push(created.graphId);
    return created.graphId;
  }

  const claim = (minion: { id: number }, on: Scheduler = scheduler) =>
    on.claim({ minionId: minion.id, leaseMs: LEASE });

  /** Every claim the minion gets until none is left, as "graph label" strings. */
  async function drain(minion: { id: number }, names: Map<number, string>) {
    const got: string[] = [];
    for (let c = await claim(minion); c; c = await claim(minion)) {
      got.push(`${names.get(c.graphId)} ${c.label}`);
    }
    return got.sort();
  }

  it('takes trust into account: untrusted graphs on untrusted minions only, restricted minions take named jobs of protected branches', async () => {
    const tag = freshTag();
    const jobs = () => [job('build', { requires: [tag] }), job('sign', { requires: [tag] })];
    const names = new Map<number, string>([
      [await create(graphSpec('fork', jobs(), 'pr-1'), { trust: 'untrusted' }), 'fork'],
      [await create(graphSpec('feature', jobs(), 'feature')), 'feature'],
      [await create(graphSpec('main', jobs()), { protectedBranch: true }), 'main'],
    ]);
    const restricted = await newMinion([tag], { trust: 'restricted', jobLabels: ['sign'] });
    const untrusted = await newMinion([tag], { trust: 'untrusted' });
    const trusted = await newMinion([tag, 'extra']);

    // A restricted minion: only `sign`, only from the protected branch's graph.
    expect(await drain(restricted, names)).toEqual(['main sign']);
    // An untrusted minion: every job of the fork's graph, nothing else.
    expect(await drain(untrusted, names)).toEqual(['fork build', 'fork sign']);
    // A trusted minion: the trusted graphs' jobs that are left; never the fork's.
    expect(await drain(trusted, names)).toEqual(['feature build', 'feature sign', 'main build']);

    // A fork's graph waits for an untrusted minion, however many trusted ones ask.
    const later = await create(graphSpec('fork-2', jobs(), 'pr-2'), { trust: 'untrusted' });
    expect(await claim(trusted)).toBeUndefined();
    expect(await claim(restricted)).toBeUndefined();
    expect(await claim(untrusted)).toMatchObject({ graphId: later });
  });

  it('refuses claims of quarantined, retired and unknown minions with InactiveMinionError', async () => {
    const tag = freshTag();
    await create(graphSpec('refused', [job('build', { requires: [tag] })]));
    const quarantined = await newMinion([tag], { state: 'quarantined' });
    const retired = await newMinion([tag], { state: 'retired' });
    await expect(claim(quarantined)).rejects.toMatchObject({
      name: 'InactiveMinionError',
      state: 'quarantined',
    });
    await expect(claim(retired)).rejects.toBeInstanceOf(InactiveMinionError);
    await expect(claim({ id: 987_654 })).rejects.toMatchObject({ state: undefined });
    expect(await claim(await newMinion([tag]))).toMatchObject({ label: 'build' });
  });

  it('quarantines a minion after N exceptions in a row it reported (a lapsed lease neither counts nor resets), in the run’s transaction', async () => {
    const tag = freshTag();
    const strict = createScheduler({
      db: database.db,
      clock,
      leaseClock: clock,
      quarantineAfter: 2,
    });
    await create(
      graphSpec(
        'flaky',
        Array.from({ length: 6 }, (_, i) => job(`j${i}`, { requires: [tag] })),
      ),
      {},
      strict,
    );
    const minion = await newMinion([tag]);
    const row = async () =>
      (await database.db.select().from(minions).where(eq(minions.id, minion.id)))[0]!;
    const finish = async (result: 'exception' | 'failure') => {
      const run = (await claim(minion, strict))!;
      expect(await strict.finishRun({ runId: run.runId, minionId: minion.id, result })).toBe('ok');
    };

    await finish('exception');
    expect(await row()).toMatchObject({ state: 'active', consecutiveExceptions: 1 });
    // Any other result resets the count: a failing job is not a broken machine.
    await finish('failure');
    expect(await row()).toMatchObject({ state: 'active', consecutiveExceptions: 0 });
    await finish('exception');
    // A lapsed lease (the network's or the database's doing as likely as the machine's)
    // leaves the count alone: the minion stays active with its one exception.
    const lapsed = (await claim(minion, strict))!;
    clock.advance(LEASE / 1000 + 1);
    expect(await strict.expireLeases()).toBe(1);
    const status = (await strict.graphStatus({ graphId: graphsOfTest.at(-1)! }))!;
    expect(status.jobs.find((j) => j.id === lapsed.jobId)!.runs.at(-1)).toMatchObject({
      result: 'exception',
      reason: 'claim-expired',
    });
    expect(await row()).toMatchObject({ state: 'active', consecutiveExceptions: 1 });
    // The second exception it reports in a row quarantines it.
    await finish('exception');
    expect(await row()).toMatchObject({
      state: 'quarantined',
      consecutiveExceptions: 2,
      quarantinedAt: clock.now(),
    });
    await expect(claim(minion, strict)).rejects.toBeInstanceOf(InactiveMinionError);

    // Released: active, counted from zero, claiming again.
    const admin = createMinionAdmin({ db: database.db });
    expect(await admin.releaseMinion(minion.id)).toMatchObject({
      state: 'active',
      quarantinedAt: null,
    });
    expect(await row()).toMatchObject({ consecutiveExceptions: 0 });
    expect(await claim(minion, strict)).toMatchObject({ attempt: 1 });
    await expect(admin.releaseMinion(987_654)).rejects.toThrow('No minion 987654');
  });

  it('prefers the claimer’s warm jobs, leaves an idle warm minion its own, and never leaves work idle', async () => {
    const tag = freshTag();
    const warm = await newMinion([tag]);
    const other = await newMinion([tag]);
    const seen = async (minion: { id: number }) =>
      database.db.update(minions).set({ lastSeenAt: clock.now() }).where(eq(minions.id, minion.id));
    // `warm` runs `build` of the repository successfully: it is warm for it.
    await create(graphSpec('first', [job('build', { requires: [tag] })]));
    const first = (await claim(warm))!;
    await scheduler.finishRun({ runId: first.runId, minionId: warm.id, result: 'success' });
    const [warmRow] = await database.db
      .select()
      .from(warmMinions)
      .where(eq(warmMinions.label, 'build'));
    expect(warmRow).toMatchObject({ repositoryId: FIXTURE_REPOSITORY_ID, minionId: warm.id });

    // `lint` is older than `build`; both have the same priority.
    const graph = async () => {
      await create(graphSpec('lint-first', [job('lint', { requires: [tag] })]));
      clock.advance(1);
      await create(graphSpec('build-next', [job('build', { requires: [tag] })]));
    };
    await graph();
    await seen(warm);
    // The warm minion takes its warm job before the older one.
    expect(await claim(warm)).toMatchObject({ label: 'build' });
    expect(await claim(warm)).toMatchObject({ label: 'lint' });

    await graph();
    await seen(warm);
    // Another minion leaves `build` to the idle warm minion and takes the older `lint`...
    expect(await claim(other)).toMatchObject({ label: 'lint' });
    // ...but takes `build` rather than nothing.
    expect(await claim(other)).toMatchObject({ label: 'build' });

    await graph();
    clock.advance(120);
    // A warm minion not seen for a while is not waiting for its jobs: oldest first again.
    expect(await claim(other)).toMatchObject({ label: 'lint' });
    expect(await claim(other)).toMatchObject({ label: 'build' });

    // Priority comes first: a higher-priority job before the warm one.
    await create(graphSpec('warm-low', [job('build', { requires: [tag] })]));
    await create(graphSpec('urgent', [job('urgent', { requires: [tag], priority: 9 })]));
    await seen(warm);
    expect(await claim(warm)).toMatchObject({ label: 'urgent' });
    expect(await claim(warm)).toMatchObject({ label: 'build' });
  });

  it('gives a retry after an infrastructure failure preferably to another minion, even its warm one', async () => {
    const tag = freshTag();
    const m1 = await newMinion([tag]);
    const m2 = await newMinion([tag]);
    await create(graphSpec('warming', [job('flaky', { requires: [tag] })]));
    const warmup = (await claim(m1))!;
    await scheduler.finishRun({ runId: warmup.runId, minionId: m1.id, result: 'success' });

    await create(
      graphSpec('retry', [
        job('flaky', { requires: [tag], retries: 1, priority: 5 }),
        job('other', { requires: [tag] }),
      ]),
    );
    const lost = (await claim(m1))!;
    expect(lost.label).toBe('flaky');
    expect(
      await scheduler.finishRun({
        runId: lost.runId,
        minionId: m1.id,
        result: 'exception',
        reason: 'minion-shutdown',
      }),
    ).toBe('ok');
    // m1 is warm for `flaky` and it has the higher priority, but m1 just lost it.
    expect(await claim(m1)).toMatchObject({ label: 'other' });
    expect(await claim(m2)).toMatchObject({ label: 'flaky', cause: 'auto-retry' });
  });

  it('never hands out a job twice to concurrent claimers over overlapping tag sets', async () => {
    const [a, b, c] = [freshTag(), freshTag(), freshTag()];
    const count = 300;
    await create(
      graphSpec(
        'wide',
        Array.from({ length: count }, (_, i) =>
          job(`j${String(i).padStart(3, '0')}`, {
            requires: [[a], [b], [a, c]][i % 3]!,
            priority: i % 4,
          }),
        ),
      ),
    );
    const claimers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => newMinion([[a], [b], [a, c], [a, b, c]][i % 4]!)),
    );
    const claimed = await Promise.all(
      claimers.map(async (minion) => {
        const mine: number[] = [];
        for (let got = await claim(minion); got; got = await claim(minion)) mine.push(got.jobId);
        return mine;
      }),
    );
    const all = claimed.flat();
    expect(all).toHaveLength(count);
    expect(new Set(all).size).toBe(count);
  });

  // PostgreSQL only, the one skipped test on PGlite: PGlite is a single connection, so no
  // other session can hold row locks while a claim runs.
  it.runIf(backend.name === 'postgres')(
    'looks past candidates other claims hold locked, and plans the claim on jobs_claim_idx',
    async () => {
      const tag = freshTag();
      const graphId = await create(
        graphSpec(
          'locked',
          Array.from({ length: 40 }, (_, i) =>
            job(`j${String(i).padStart(2, '0')}`, { requires: [tag] }),
          ),
        ),
      );
      const other = postgres(database.url!, { max: 1, onnotice: () => {} });
      try {
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        let locked!: () => void;
        const lockedAll = new Promise<void>((resolve) => (locked = resolve));
        // Another claimer holds the 30 best candidates (more than a first look reads).
        const holder = other.begin(async (tx) => {
          await tx`select id from jobs where graph_id = ${graphId} and label < 'j30' for update`;
          locked();
          await held;
        });
        await lockedAll;
        const minion = await newMinion([tag]);
        expect(await claim(minion)).toMatchObject({ label: 'j30' });
        release();
        await holder;

        // The claim statement's plan at 20,000 pending jobs: an index-ordered scan per tag set.
        const bulk = freshTag();
        await create(
          graphSpec(
            'bulk',
            Array.from({ length: 20_000 }, (_, i) =>
              job(`b${String(i).padStart(5, '0')}`, { requires: [i % 2 ? bulk : tag] }),
            ),
          ),
        );
        await other`analyze jobs`;
        let captured: { query: string; params: unknown[] } | undefined;
        const capturing = drizzlePostgres(other, {
          schema,
          logger: {
            logQuery: (query, params) => {
              if (query.includes('skip locked')) captured = { query, params };
            },
          },
        });
        await createScheduler({ db: capturing, clock }).claim({
          minionId: minion.id,
          leaseMs: LEASE,
        });
        const plan = await other.unsafe(`explain ${captured!.query}`, captured!.params as never[]);
        const text = plan.map((row) => String(row['QUERY PLAN'])).join('\n');
        expect(text).toMatch(/Index Scan using jobs_claim_idx on jobs/);
        expect(text).not.toMatch(/Seq Scan on jobs/);
      } finally {
        await other.end();
      }
    },
  );
});

describe.each(backends())('dispatch through the minion protocol on $name', (backend) => {
  let database: TestDatabase;
  let tower: Tower;
  let artifactsDir: string;
  const clock = manualClock(new Date('2026-04-01T00:00:00Z'));
  let tagCounter = 0;
  const graphsOfTest: number[] = [];
  /** The minion inventory is for operators. */
  let operator: string;

  beforeAll(async () => {
    database = await backend.open();
    artifactsDir = await mkdtemp(join(tmpdir(), 'tower-dispatch-'));
    tower = await createTower({
      config: {
        ...inProcessConfig(undefined),
        minionTokens: { trusted: TOKEN, untrusted: UNTRUSTED_TOKEN, restricted: RESTRICTED_TOKEN },
      },
      logger,
      clock,
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
    for (const graphId of graphsOfTest.splice(0)) await tower.scheduler.cancel({ graphId });
  });

  const freshTag = () => `w${++tagCounter}`;

  async function createGraph(jobs: JobSpec[], on: Scheduler = tower.scheduler) {
    const created = await on.createGraph({
      repositoryId: FIXTURE_REPOSITORY_ID,
      eventId: await insertEvent(database.db),
      spec: graphSpec('per-checkin', jobs),
      trust: 'trusted',
    });
    graphsOfTest.push(created.graphId);
    return created.graphId;
  }

  function call(method: string, path: string, token?: string, body?: unknown) {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return tower.app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async function register(body: Record<string, unknown>, token = TOKEN) {
    return call('POST', '/api/v1/minion/register', token, { name: 'm', ...body });
  }

  it('gives a minion the trust its registration token grants, and refuses more with 403', async () => {
    const trustOf = async (response: Response) => {
      expect(response.status).toBe(201);
      const { minionId } = (await response.json()) as { minionId: number };
      const [row] = await database.db.select().from(minions).where(eq(minions.id, minionId));
      return row!.trust;
    };
    // Unstated, a minion gets what its token grants; less may be asked for.
    expect(await trustOf(await register({ tags: ['linux'] }))).toBe('trusted');
    expect(await trustOf(await register({ tags: ['linux'] }, UNTRUSTED_TOKEN))).toBe('untrusted');
    expect(await trustOf(await register({ tags: ['linux'], trust: 'untrusted' }))).toBe(
      'untrusted',
    );
    // The attack: a holder of the everyday token declares itself the signing machine.
    const before = await database.db.select().from(minions);
    const cases: [Record<string, unknown>, string, string][] = [
      [
        { tags: ['signing'], trust: 'restricted', jobs: ['sign'] },
        TOKEN,
        'This registration token grants trusted minions; a restricted minion needs the token of TOWER_MINION_TOKEN_RESTRICTED',
      ],
      [
        { tags: ['linux'], trust: 'trusted' },
        UNTRUSTED_TOKEN,
        'This registration token grants untrusted minions; a trusted minion needs the token of TOWER_MINION_TOKEN',
      ],
    ];
    for (const [body, token, message] of cases) {
      const response = await register(body, token);
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ error: 'forbidden', message });
    }
    expect(await database.db.select().from(minions)).toHaveLength(before.length);
  });

  it('registers restricted minions with their job labels, and says why when the labels are wrong', async () => {
    const restricted = await register(
      { tags: ['signing'], trust: 'restricted', jobs: ['sign', 'notarize', 'sign'] },
      RESTRICTED_TOKEN,
    );
    expect(restricted.status).toBe(201);
    const { minionId } = (await restricted.json()) as { minionId: number };
    const [row] = await database.db.select().from(minions).where(eq(minions.id, minionId));
    expect(row).toMatchObject({ trust: 'restricted', jobLabels: ['notarize', 'sign'] });

    const cases: [Record<string, unknown>, string][] = [
      [
        { tags: ['signing'], trust: 'restricted' },
        'jobs: must list at least one job label: a restricted minion takes only the jobs it names',
      ],
      [
        { tags: ['signing'], trust: 'restricted', jobs: [] },
        'jobs: must list at least one job label: a restricted minion takes only the jobs it names',
      ],
      [
        { tags: ['linux'], trust: 'trusted', jobs: ['sign'] },
        'jobs: is only for restricted minions (trust: restricted); a trusted minion takes any job its tags allow',
      ],
      [{ tags: ['linux'], trust: 'restricted', jobs: ['sign me'] }, 'jobs.0: must be a job label'],
    ];
    for (const [body, message] of cases) {
      const response = await register(body, RESTRICTED_TOKEN);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { message: string }).message).toContain(message);
    }
    const { minions: listed } = (await (await call('GET', '/api/v1/minions', operator)).json()) as {
      minions: { id: number; jobs: string[] | null; quarantinedAt: string | null }[];
    };
    expect(listed.find((m) => m.id === minionId)).toMatchObject({
      jobs: ['notarize', 'sign'],
      quarantinedAt: null,
    });
  });

  it('quarantines after three exceptions in a row: the runs it has go on, claims get 403 until `tower minions release`', async () => {
    const tag = freshTag();
    await createGraph(Array.from({ length: 4 }, (_, i) => job(`j${i}`, { requires: [tag] })));
    const registered = await register({ name: 'flaky-box', tags: [tag] });
    const { minionId, credential } = (await registered.json()) as {
      minionId: number;
      credential: string;
    };
    const runs: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await call('POST', '/api/v1/minion/claim', credential, { waitSeconds: 0 });
      runs.push(((await response.json()) as { run: { runId: number } }).run.runId);
    }
    for (const runId of runs.slice(0, 3)) {
      const report = await call('POST', `/api/v1/minion/runs/${runId}/report`, credential, {
        result: 'exception',
      });
      expect(report.status).toBe(200);
    }
    const refused = await call('POST', '/api/v1/minion/claim', credential, { waitSeconds: 0 });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({
      error: 'quarantined',
      message: expect.stringContaining(`\`tower minions release ${minionId}\``),
    });
    // Its last run is still its own: heartbeat, log, artifact and report are taken.
    const last = runs[3]!;
    expect(
      (await call('POST', `/api/v1/minion/runs/${last}/heartbeat`, credential, {})).status,
    ).toBe(200);
    expect(
      (await call('POST', `/api/v1/minion/runs/${last}/logs`, credential, { seq: 0, data: 'x' }))
        .status,
    ).toBe(204);
    const artifact = await tower.app.request(`/api/v1/minion/runs/${last}/artifacts/out.txt`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${credential}` },
      body: 'bytes',
    });
    expect(artifact.status).toBe(201);
    expect(
      (await call('POST', `/api/v1/minion/runs/${last}/report`, credential, { result: 'success' }))
        .status,
    ).toBe(200);

    const { minions: listed } = (await (await call('GET', '/api/v1/minions', operator)).json()) as {
      minions: { id: number; state: string; quarantinedAt: string | null }[];
    };
    expect(listed.find((m) => m.id === minionId)).toMatchObject({
      state: 'quarantined',
      quarantinedAt: clock.now().toISOString(),
    });

    // The operator's commands, on this database.
    let output = '';
    const command = () =>
      minionsCommand(async () => ({ ...database, close: async () => {} }), {
        out: (text) => (output += text),
        err: (text) => (output += text),
      });
    await command().parseAsync(['list'], { from: 'user' });
    const line = output.split('\n').find((l) => l.startsWith(`${minionId} `))!;
    expect(line).toMatch(/^\d+ +flaky-box +w\d+ +trusted +quarantined since \S+ +\S+$/);
    expect(output.split('\n')[0]).toMatch(/^ID +NAME +TAGS +TRUST +STATE +LAST SEEN$/);
    output = '';
    await command().parseAsync(['release', String(minionId)], { from: 'user' });
    expect(output).toBe(`Minion ${minionId} (flaky-box) is active: it claims jobs again.\n`);

    await createGraph([job('after', { requires: [tag] })]);
    const again = await call('POST', '/api/v1/minion/claim', credential, { waitSeconds: 0 });
    expect(again.status).toBe(200);
  });

  it("refuses every request with a retired minion's revoked credential, changing nothing, and retries its run elsewhere", async () => {
    const tag = freshTag();
    const graphId = await createGraph([job('build', { requires: [tag], retries: 1 })]);
    const registered = await register({ name: 'lost-laptop', tags: [tag] });
    const { minionId, credential } = (await registered.json()) as {
      minionId: number;
      credential: string;
    };
    const claimed = await call('POST', '/api/v1/minion/claim', credential, { waitSeconds: 0 });
    const { runId } = ((await claimed.json()) as { run: { runId: number } }).run;

    let output = '';
    await minionsCommand(async () => ({ ...database, close: async () => {} }), {
      out: (text) => (output += text),
      err: (text) => (output += text),
    }).parseAsync(['retire', String(minionId)], { from: 'user' });
    expect(output).toContain(`Minion ${minionId} (lost-laptop) is retired`);

    const before = await (await call('GET', `/api/v1/graphs/${graphId}`)).json();
    const requests: [string, unknown][] = [
      ['/api/v1/minion/claim', { waitSeconds: 0 }],
      [`/api/v1/minion/runs/${runId}/heartbeat`, {}],
      [`/api/v1/minion/runs/${runId}/logs`, { seq: 0, data: 'late output' }],
      [`/api/v1/minion/runs/${runId}/report`, { result: 'success' }],
    ];
    for (const [path, body] of requests) {
      const response = await call('POST', path, credential, body);
      expect(response.status, path).toBe(401);
      expect(((await response.json()) as { message: string }).message).toContain(
        `Minion ${minionId} is retired`,
      );
    }
    expect(await (await call('GET', `/api/v1/graphs/${graphId}`)).json()).toEqual(before);
    expect(await (await call('GET', `/api/v1/runs/${runId}/log`)).text()).toBe('');

    // Its lease lapsed when it was retired: the next pass retries the job, for another minion.
    await tower.maintenance.tick();
    const after = (await (await call('GET', `/api/v1/graphs/${graphId}`)).json()) as {
      jobs: { state: string; runs: { result: string; reason: string }[] }[];
    };
    expect(after.jobs[0]).toMatchObject({
      state: 'pending',
      runs: [{ result: 'exception', reason: 'claim-expired' }],
    });
    const other = (await (await register({ name: 'spare', tags: [tag] })).json()) as {
      credential: string;
    };
    const retry = await call('POST', '/api/v1/minion/claim', other.credential, { waitSeconds: 0 });
    expect(((await retry.json()) as { run: { attempt: number } }).run.attempt).toBe(2);
  });

  /** Scheduler and protocol wired by hand, counting each minion's claim attempts. */
  function countingDomain(notifier: Notifier) {
    const attempts = new Map<number, number>();
    const base = createScheduler({
      db: database.db,
      clock,
      onClaimable: (keys) => notifier.notify(keys),
    });
    const scheduler: Scheduler = {
      ...base,
      claim: (input) => {
        attempts.set(input.minionId, (attempts.get(input.minionId) ?? 0) + 1);
        return base.claim(input);
      },
    };
    const protocol = createMinionProtocol({
      db: database.db,
      scheduler,
      clock,
      notifier,
      artifacts: createFileArtifactStore(artifactsDir),
      runSignals: createRunSignals(),
      registrationTokens: { trusted: TOKEN },
      publicUrl: 'http://localhost',
    });
    return { scheduler, protocol, attempts };
  }

  async function registerMinions(protocol: MinionProtocol, tags: string[], count: number) {
    const out: Minion[] = [];
    for (let i = 0; i < count; i++) {
      const { minionId } = await protocol.register(TOKEN, {
        name: `w${i}`,
        tags,
        trust: 'trusted',
      });
      out.push({ id: minionId, name: `w${i}`, tags, trust: 'trusted', state: 'active' });
    }
    return out;
  }

  it('wakes one waiter of the tag set that got work, none of the others, and fans out for a burst', async () => {
    const notifier =
      backend.name === 'postgres'
        ? createPostgresNotifier({ db: database.db, logger })
        : createInProcessNotifier();
    const { scheduler, protocol, attempts } = countingDomain(notifier);
    const [a, b] = [freshTag(), freshTag()];
    const onA = await registerMinions(protocol, [a], 8);
    const onB = await registerMinions(protocol, [b], 8);
    const stop = new AbortController();
    // Sixteen waiting claims listen to the one signal.
    setMaxListeners(0, stop.signal);
    const claimed: { minion: number; label: string }[] = [];
    const loops = [...onA, ...onB].map(async (minion) => {
      while (!stop.signal.aborted) {
        const run = await protocol.claim(minion, { waitSeconds: 10 }, stop.signal);
        if (run) claimed.push({ minion: minion.id, label: run.label });
      }
    });
    try {
      await sleep(300);
      const before = new Map(attempts);
      const since = (minions: Minion[]) =>
        minions.reduce((sum, m) => sum + (attempts.get(m.id) ?? 0) - (before.get(m.id) ?? 0), 0);

      const started = Date.now();
      await createGraph([job('one', { requires: [a] })], scheduler);
      while (claimed.length < 1) await sleep(5);
      expect(Date.now() - started).toBeLessThan(2000);
      await sleep(200);
      // One waiter of `a` took it and passed the wake-up to two more, who found nothing;
      // it then polls again (one more attempt). No waiter of `b` tried.
      expect(claimed).toEqual([{ minion: expect.any(Number), label: 'one' }]);
      expect(since(onB)).toBe(0);
      expect(since(onA)).toBeLessThanOrEqual(4);

      // Twenty jobs at once for eight waiters: each success wakes two more, until none is left.
      await createGraph(
        Array.from({ length: 20 }, (_, i) =>
          job(`burst${String(i).padStart(2, '0')}`, { requires: [a] }),
        ),
        scheduler,
      );
      const deadline = Date.now() + 5000;
      while (claimed.length < 21 && Date.now() < deadline) await sleep(10);
      expect(claimed).toHaveLength(21);
      expect(new Set(claimed.map((c) => c.label)).size).toBe(21);
      expect(new Set(claimed.map((c) => c.minion)).size).toBeGreaterThan(1);
      expect(since(onB)).toBe(0);
    } finally {
      stop.abort();
      await Promise.all(loops);
      await notifier.close();
    }
  });
});
