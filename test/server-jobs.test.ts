import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jobApprovals, logChunks } from '../src/db/schema.js';
import { parseHostAllowList, type HostAllowList } from '../src/lib/ip-ranges.js';
import { createLogger } from '../src/lib/logger.js';
import {
  createNotifyAdapter,
  type Notification,
  type NotifyPort,
} from '../src/scheduler/notify.js';
import { createScheduler, type Scheduler } from '../src/scheduler/scheduler.js';
import { createServerJobRunner } from '../src/scheduler/server-job-runner.js';
import { mayApprove, timerDue } from '../src/scheduler/server-jobs.js';
import { backends, type TestDatabase } from './support/databases.js';
import { insertRepositoryFixture } from './support/fixtures.js';
import { job } from './support/graph-specs.js';
import {
  graphHelpers,
  graphSpec,
  insertMinion,
  manualClock,
  runsOf,
} from './support/scheduler-harness.js';

const LEASE = 60_000;
const silent = createLogger({ level: process.env.DEBUG_SERVER_JOBS ? 'debug' : 'silent' });

function allowList(text: string): HostAllowList {
  const parsed = parseHostAllowList(text);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.list;
}
/** The test servers listen on loopback: an internal hook, allowed explicitly. */
const loopbackAllowed = allowList('127.0.0.1');

type Received = { method: string; url: string; headers: IncomingHttpHeaders; body: string };

/** A real HTTP server on a free local port that answers every request with `status`. */
async function webhookServer() {
  const received: Received[] = [];
  let status = 204;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.statusCode = status;
      res.end(status >= 400 ? 'no thanks' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    answer(next: number) {
      status = next;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port that records what it was given. */
function capturingPort(): NotifyPort & { sent: Notification[] } {
  const sent: Notification[] = [];
  return {
    sent,
    async send(n) {
      sent.push(n);
    },
  };
}

describe('server-side job rules', () => {
  it('approvers are logins or teams, case-insensitive', () => {
    const approvers = ['Alice', 'team:QA'];
    expect(mayApprove(approvers, { login: 'alice', teams: [] })).toBe(true);
    expect(mayApprove(approvers, { login: 'bob', teams: ['qa'] })).toBe(true);
    expect(mayApprove(approvers, { login: 'bob', teams: ['dev'] })).toBe(false);
    // A login that looks like a team is not a team.
    expect(mayApprove(['team:qa'], { login: 'qa', teams: [] })).toBe(false);
  });

  it('a timer is due at its time, or its delay after it became pending', () => {
    const now = new Date('2026-03-01T00:00:00Z');
    expect(timerDue({ timer: { delaySeconds: 90, at: null } }, now)).toEqual(
      new Date('2026-03-01T00:01:30Z'),
    );
    expect(
      timerDue({ timer: { delaySeconds: null, at: '2026-03-02T01:00:00+01:00' } }, now),
    ).toEqual(new Date('2026-03-02T00:00:00Z'));
  });
});

describe('the notify adapter', () => {
  const notification: Notification = {
    repositoryId: 10,
    sha: 'b'.repeat(40),
    event: { id: 1, type: 'push', branch: 'main' },
    graph: { id: 2, name: 'ci' },
    job: { id: 3, label: 'tell' },
    runId: 4,
    comment: 'hello',
    webhook: null,
  };

  it('logs comments until GitHub comments are there', async () => {
    let written = '';
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString();
        done();
      },
    });
    const logger = createLogger({ level: 'info', destination });
    await createNotifyAdapter({ logger }).send(notification);
    expect(JSON.parse(written)).toMatchObject({
      msg: 'notify comment (not posted: no GitHub comment port yet)',
      job: 'tell',
      graphId: 2,
    });
    // Without a logger, nothing happens and nothing fails.
    await createNotifyAdapter().send(notification);
  });

  it('gives up on a webhook that does not answer in time, or redirects', async () => {
    const silentServer = createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve));
    const { port } = silentServer.address() as AddressInfo;
    const hook = await webhookServer();
    hook.answer(302);
    try {
      const slow = `http://127.0.0.1:${port}/hook`;
      await expect(
        createNotifyAdapter({ timeoutMs: 200, allowHosts: loopbackAllowed }).send({
          ...notification,
          comment: null,
          webhook: slow,
        }),
      ).rejects.toThrow(`webhook ${slow} gave no answer within 0.2 s`);
      await expect(
        createNotifyAdapter({ allowHosts: loopbackAllowed }).send({
          ...notification,
          comment: null,
          webhook: hook.url,
        }),
      ).rejects.toThrow(`webhook ${hook.url} answered HTTP 302 (redirects are not followed)`);
    } finally {
      silentServer.closeAllConnections();
      await new Promise<void>((resolve) => silentServer.close(() => resolve()));
      await hook.close();
    }
  });
});

describe('notify webhooks aimed inside (the attack)', () => {
  const notification: Notification = {
    repositoryId: 10,
    sha: 'b'.repeat(40),
    event: { id: 1, type: 'push', branch: 'main' },
    graph: { id: 2, name: 'ci' },
    job: { id: 3, label: 'tell' },
    runId: 4,
    comment: null,
    webhook: null,
  };
  const hint = 'an internal hook must be listed in TOWER_NOTIFY_ALLOW_HOSTS';

  it('refuse loopback, the metadata address and names resolving to them; nothing arrives', async () => {
    const hook = await webhookServer();
    const { port } = new URL(hook.url);
    const adapter = createNotifyAdapter();
    const send = (webhook: string) => adapter.send({ ...notification, webhook });
    try {
      await expect(send(hook.url)).rejects.toThrow(
        `webhook ${hook.url} refused: the address is loopback; ${hint}`,
      );
      await expect(send('http://169.254.169.254/latest/meta-data/')).rejects.toThrow(
        'webhook http://169.254.169.254/latest/meta-data/ refused: the address is link-local (where cloud metadata services answer)',
      );
      // A name is judged by what it resolves to (localhost: 127.0.0.1 and ::1).
      await expect(send(`http://localhost:${port}/hook`)).rejects.toThrow(
        `refused: the address is loopback; ${hint}`,
      );
      // IPv4 written as IPv6, and the other private ranges.
      for (const [url, why] of [
        [`http://[::ffff:127.0.0.1]:${port}/hook`, 'loopback'],
        [`http://[::1]:${port}/hook`, 'loopback'],
        ['http://10.1.2.3/', 'private'],
        ['http://172.16.0.1/', 'private'],
        ['http://192.168.1.1/', 'private'],
        ['http://100.64.0.1/', 'shared (carrier-grade NAT)'],
        ['http://[fd00::1]/', 'private'],
        ['http://[fe80::1]/', 'link-local'],
        ['http://0.0.0.0/', 'unspecified ("this network")'],
        ['http://224.0.0.1/', 'multicast'],
      ] as const) {
        await expect(send(url)).rejects.toThrow(`webhook ${url} refused: the address is ${why};`);
      }
      // One private address among public ones is enough to refuse the name.
      const mixed = createNotifyAdapter({
        resolveHost: async () => [
          { address: '93.184.215.14', family: 4 },
          { address: '10.0.0.7', family: 4 },
        ],
      });
      await expect(
        mixed.send({ ...notification, webhook: 'https://hooks.example.com/x' }),
      ).rejects.toThrow('refused: the address is private');
      expect(hook.received).toEqual([]);
    } finally {
      await hook.close();
    }
  });

  it('connect to the address that was checked: a name cannot resolve elsewhere in between', async () => {
    const hook = await webhookServer();
    const { port } = new URL(hook.url);
    // First 127.0.0.2 (allowed; nothing listens there), then the listening 127.0.0.1.
    const answers = ['127.0.0.2', '127.0.0.1'];
    let asked = 0;
    const adapter = createNotifyAdapter({
      allowHosts: allowList('127.0.0.2/32'),
      resolveHost: async () => [{ address: answers[asked++]!, family: 4 }],
    });
    try {
      await expect(
        adapter.send({ ...notification, webhook: `http://rebinding.example:${port}/hook` }),
      ).rejects.toThrow(
        `webhook http://rebinding.example:${port}/hook could not be reached: the connection was refused`,
      );
      expect(asked).toBe(1);
      expect(hook.received).toEqual([]);
    } finally {
      await hook.close();
    }
  });

  it('reach an allowlisted internal hook, by address or by name, signed', async () => {
    const hook = await webhookServer();
    const { port } = new URL(hook.url);
    const secret = 'a notify secret of some length';
    try {
      await createNotifyAdapter({ allowHosts: loopbackAllowed, secret }).send({
        ...notification,
        webhook: hook.url,
      });
      await createNotifyAdapter({ allowHosts: allowList('LocalHost'), secret }).send({
        ...notification,
        webhook: `http://localhost:${port}/hook`,
      });
      expect(hook.received).toHaveLength(2);
      for (const request of hook.received) {
        // Checked as a receiver would: its own HMAC of the raw body, compared in constant time.
        const expected = Buffer.from(
          `sha256=${createHmac('sha256', secret).update(request.body).digest('hex')}`,
        );
        const given = Buffer.from(String(request.headers['x-tower-signature-256']));
        expect(given.length).toBe(expected.length);
        expect(timingSafeEqual(given, expected)).toBe(true);
        expect(JSON.parse(request.body)).toMatchObject({ version: 1, runId: 4 });
      }
      // Without a secret, no signature header.
      await createNotifyAdapter({ allowHosts: loopbackAllowed }).send({
        ...notification,
        webhook: hook.url,
      });
      expect(hook.received[2]!.headers['x-tower-signature-256']).toBeUndefined();
    } finally {
      await hook.close();
    }
  });

  it('say why a URL or a name cannot be called, without internal detail', async () => {
    const adapter = createNotifyAdapter({
      resolveHost: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), {
          code: 'ENOTFOUND',
        });
      },
    });
    await expect(
      adapter.send({ ...notification, webhook: 'http://nowhere.invalid/' }),
    ).rejects.toThrow(
      /^webhook http:\/\/nowhere\.invalid\/ the host name nowhere\.invalid does not resolve$/,
    );
    await expect(adapter.send({ ...notification, webhook: 'ftp://example.com/' })).rejects.toThrow(
      'webhook ftp://example.com/ refused: only http:// and https:// URLs are called',
    );
    await expect(adapter.send({ ...notification, webhook: 'not a url' })).rejects.toThrow(
      'webhook not a url refused: not a URL',
    );
    const none = createNotifyAdapter({ resolveHost: async () => [] });
    await expect(none.send({ ...notification, webhook: 'http://empty.example/' })).rejects.toThrow(
      'the host name empty.example does not resolve',
    );
  });
});

describe.each(backends())('server-side jobs on $name', (backend) => {
  let database: TestDatabase;
  let scheduler: Scheduler;
  const port = capturingPort();
  const clock = manualClock(new Date('2026-02-01T00:00:00Z'));
  let tagCounter = 0;
  const graphs = graphHelpers(
    () => scheduler,
    () => database.db,
  );
  const freshTag = () => `s${++tagCounter}`;

  beforeAll(async () => {
    database = await backend.open();
    scheduler = createScheduler({ db: database.db, clock, leaseClock: clock, notify: port });
    await insertRepositoryFixture(database.db);
  });
  afterAll(async () => {
    await database.dispose();
  });
  afterEach(async () => {
    port.sent.length = 0;
    await graphs.cleanUp();
  });

  /** Claims and finishes the minion's next job with `result`. */
  async function runNext(
    minion: { id: number },
    result: 'success' | 'failure' = 'success',
  ): Promise<string> {
    const claim = (await scheduler.claim({ minionId: minion.id, leaseMs: LEASE }))!;
    await scheduler.finishRun({ runId: claim.runId, minionId: minion.id, result });
    return claim.label;
  }

  describe('timers', () => {
    it('fire their delay after they become pending, and only then', async () => {
      const tag = freshTag();
      const { graphId } = await graphs.create(
        graphSpec('timers', [
          job('build', { requires: [tag] }),
          job('cool-down', {
            kind: 'timer',
            timer: { delaySeconds: 30, at: null },
            needs: ['build'],
          }),
          job('deploy', { requires: [tag], needs: ['cool-down'] }),
          job('at-once', { kind: 'timer', timer: { delaySeconds: 40, at: null } }),
        ]),
      );
      const startedAt = clock.now();
      let status = await graphs.status(graphId);
      // Pending from the start: due 40 s after the graph was created.
      expect(status.job('at-once').dueAt).toEqual(new Date(startedAt.getTime() + 40_000));
      expect(status.job('cool-down')).toMatchObject({ state: 'blocked', dueAt: null });

      const minion = await insertMinion(database.db, [tag]);
      clock.advance(10);
      expect(await runNext(minion)).toBe('build');
      const pendingAt = clock.now();
      status = await graphs.status(graphId);
      expect(status.job('cool-down')).toMatchObject({
        state: 'pending',
        dueAt: new Date(pendingAt.getTime() + 30_000),
      });

      clock.advance(29);
      expect(await scheduler.fireTimers()).toBe(0);
      clock.advance(1);
      // at-once and cool-down are both due at +40 s.
      expect(await scheduler.fireTimers()).toBe(2);
      expect(await graphs.states(graphId)).toMatchObject({
        'at-once': 'done success',
        'cool-down': 'done success',
        deploy: 'pending',
      });
      expect((await graphs.status(graphId)).job('cool-down').runs).toEqual([]);
      expect(await scheduler.fireTimers()).toBe(0);
    });

    it('fire at their time, and again after a retrigger', async () => {
      const at = new Date(clock.now().getTime() + 3600_000);
      const { graphId } = await graphs.create(
        graphSpec('at', [
          job('nightly', { kind: 'timer', timer: { delaySeconds: null, at: at.toISOString() } }),
          job('after', { kind: 'dummy', needs: ['nightly'] }),
        ]),
      );
      expect((await graphs.status(graphId)).job('nightly').dueAt).toEqual(at);
      clock.advance(3599);
      expect(await scheduler.fireTimers()).toBe(0);
      clock.advance(1);
      expect(await scheduler.fireTimers()).toBe(1);
      expect(await graphs.states(graphId)).toEqual({
        after: 'done success',
        nightly: 'done success',
      });
      expect((await graphs.status(graphId)).graph).toMatchObject({
        state: 'done',
        result: 'success',
      });

      // Retriggered after its time: due at once, since the time has passed.
      const nightly = (await graphs.status(graphId)).job('nightly');
      expect(await scheduler.retrigger({ jobId: nightly.id })).toMatchObject({ ok: true });
      expect((await graphs.status(graphId)).job('nightly').dueAt).toEqual(at);
      expect(await scheduler.fireTimers()).toBe(1);
      expect((await graphs.status(graphId)).graph.state).toBe('done');
    });

    it('still end with their request timeout, which clears the due time', async () => {
      const { graphId } = await graphs.create(
        graphSpec('slow-timer', [
          job('wait', {
            kind: 'timer',
            timer: { delaySeconds: 3600, at: null },
            requestTimeout: { seconds: 60, result: 'failure' },
          }),
        ]),
      );
      clock.advance(60);
      expect(await scheduler.enforceTimeouts()).toBe(1);
      expect((await graphs.status(graphId)).job('wait')).toMatchObject({
        state: 'done',
        result: 'failure',
        reason: 'request-timeout',
        dueAt: null,
      });
      clock.advance(3600);
      expect(await scheduler.fireTimers()).toBe(0);
    });

    it('fire once when several replicas pass at the same time', async () => {
      const replicas = [0, 1, 2].map(() =>
        createScheduler({ db: database.db, clock, notify: port }),
      );
      const { graphId } = await graphs.create(
        graphSpec('replica-timers', [
          job('wait', { kind: 'timer', timer: { delaySeconds: 5, at: null } }),
          job('count', { kind: 'dummy', needs: ['wait'] }),
        ]),
      );
      clock.advance(5);
      const fired = await Promise.all(replicas.map((replica) => replica.fireTimers()));
      expect(fired.reduce((a, b) => a + b, 0)).toBe(1);
      expect(await graphs.states(graphId)).toEqual({
        count: 'done success',
        wait: 'done success',
      });
    });
  });

  describe('breakpoints', () => {
    it('take an approval from a listed login or a member of a listed team, recorded', async () => {
      const tag = freshTag();
      const { graphId } = await graphs.create(
        graphSpec('approvals', [
          job('sign-off', { kind: 'breakpoint', breakpoint: { approvers: ['alice', 'team:qa'] } }),
          job('qa-check', { kind: 'breakpoint', breakpoint: { approvers: ['team:qa'] } }),
          job('ship', { requires: [tag], needs: ['sign-off', 'qa-check'] }),
        ]),
      );
      const status = await graphs.status(graphId);
      const signOff = status.job('sign-off').id;
      const qaCheck = status.job('qa-check').id;

      expect(
        await scheduler.approve({ jobId: signOff, approver: { login: 'mallory', teams: ['dev'] } }),
      ).toEqual({
        ok: false,
        refusal: 'not-an-approver',
        reason: 'mallory may not approve "sign-off": its approvers are alice, team:qa',
        approvers: ['alice', 'team:qa'],
      });
      expect((await graphs.status(graphId)).job('sign-off').state).toBe('pending');

      clock.advance(1);
      expect(
        await scheduler.approve({ jobId: signOff, approver: { login: 'Alice', teams: [] } }),
      ).toMatchObject({ ok: true });
      expect(
        await scheduler.approve({ jobId: qaCheck, approver: { login: 'carol', teams: ['qa'] } }),
      ).toMatchObject({ ok: true });
      expect(await graphs.states(graphId)).toEqual({
        'qa-check': 'done success',
        ship: 'pending',
        'sign-off': 'done success',
      });
      const approvals = await database.db
        .select()
        .from(jobApprovals)
        .where(eq(jobApprovals.jobId, signOff));
      expect(approvals).toEqual([
        expect.objectContaining({ jobId: signOff, approver: 'Alice', approvedAt: clock.now() }),
      ]);
    });

    it('refuse what is not a pending breakpoint, and record nothing then', async () => {
      const tag = freshTag();
      const { graphId } = await graphs.create(
        graphSpec('refusals', [
          job('build', { requires: [tag] }),
          job('gate', {
            kind: 'breakpoint',
            breakpoint: { approvers: ['alice'] },
            needs: ['build'],
          }),
          job('open-gate', { kind: 'breakpoint', breakpoint: { approvers: ['alice'] } }),
        ]),
      );
      const status = await graphs.status(graphId);
      const alice = { login: 'alice', teams: [] };
      expect(await scheduler.approve({ jobId: status.job('gate').id, approver: alice })).toEqual({
        ok: false,
        refusal: 'not-pending',
        reason: 'only a pending breakpoint can be approved, and "gate" is blocked',
        approvers: ['alice'],
      });
      expect(
        await scheduler.approve({ jobId: status.job('build').id, approver: alice }),
      ).toMatchObject({ ok: false, refusal: 'not-a-breakpoint' });
      expect(await scheduler.approve({ jobId: 987_654, approver: alice })).toMatchObject({
        ok: false,
        refusal: 'unknown-job',
      });
      const openGate = status.job('open-gate').id;
      expect(await scheduler.approve({ jobId: openGate, approver: alice })).toMatchObject({
        ok: true,
      });
      expect(await scheduler.approve({ jobId: openGate, approver: alice })).toMatchObject({
        ok: false,
        refusal: 'not-pending',
        reason: 'only a pending breakpoint can be approved, and "open-gate" is done (success)',
      });
      const recorded = await database.db
        .select()
        .from(jobApprovals)
        .where(eq(jobApprovals.jobId, status.job('gate').id));
      expect(recorded).toEqual([]);
      expect(
        await database.db.select().from(jobApprovals).where(eq(jobApprovals.jobId, openGate)),
      ).toHaveLength(1);
    });
  });

  describe('notify jobs', () => {
    it('POST to their webhook once, and end success with a run and a log', async () => {
      const hook = await webhookServer();
      try {
        const replicas = [0, 1, 2].map(() =>
          createScheduler({
            db: database.db,
            clock,
            notify: createNotifyAdapter({ allowHosts: loopbackAllowed }),
          }),
        );
        const { graphId } = await graphs.create(
          graphSpec('webhook', [
            job('tell', { kind: 'notify', notify: { comment: 'all good', webhook: hook.url } }),
            job('after', { kind: 'dummy', needs: ['tell'] }),
          ]),
        );
        const taken = await Promise.all(replicas.map((replica) => replica.runNotifications()));
        expect(taken.reduce((a, b) => a + b, 0)).toBe(1);
        expect(hook.received).toHaveLength(1);
        const request = hook.received[0]!;
        expect(request).toMatchObject({ method: 'POST', url: '/hook' });
        expect(request.headers['content-type']).toBe('application/json');
        const status = await graphs.status(graphId);
        const tell = status.job('tell');
        expect(JSON.parse(request.body)).toEqual({
          version: 1,
          repositoryId: 10,
          sha: 'a'.repeat(40),
          event: { id: status.graph.eventId, type: 'push', branch: 'main' },
          graph: { id: graphId, name: 'webhook' },
          job: { id: tell.id, label: 'tell' },
          runId: tell.runs[0]!.id,
          comment: 'all good',
        });
        expect(tell).toMatchObject({ state: 'done', result: 'success' });
        expect(tell.runs).toEqual([
          expect.objectContaining({
            attempt: 1,
            cause: 'scheduled',
            state: 'done',
            result: 'success',
            minionId: null,
          }),
        ]);
        expect(status.job('after').state).toBe('done');
        const log = await database.db
          .select()
          .from(logChunks)
          .where(eq(logChunks.runId, tell.runs[0]!.id));
        expect(log.map((chunk) => chunk.data)).toEqual([`notified: comment, POST ${hook.url}\n`]);
        // Nothing is pending any more: another pass sends nothing.
        expect(await replicas[0]!.runNotifications()).toBe(0);
        expect(hook.received).toHaveLength(1);

        // A retrigger is a new run, and a new call.
        expect(await scheduler.retrigger({ jobId: tell.id })).toMatchObject({ ok: true });
        expect(await replicas[1]!.runNotifications()).toBe(1);
        expect(hook.received).toHaveLength(2);
        expect((await graphs.status(graphId)).job('tell').runs.map((r) => r.cause)).toEqual([
          'scheduled',
          'retrigger',
        ]);
      } finally {
        await hook.close();
      }
    });

    it('end exception when the webhook answers an error or cannot be reached', async () => {
      const hook = await webhookServer();
      hook.answer(500);
      const closed = await webhookServer();
      await closed.close();
      const replica = createScheduler({
        db: database.db,
        clock,
        notify: createNotifyAdapter({ allowHosts: loopbackAllowed }),
      });
      try {
        const { graphId } = await graphs.create(
          graphSpec('webhook-fails', [
            job('refused', { kind: 'notify', notify: { comment: null, webhook: hook.url } }),
            job('unreachable', { kind: 'notify', notify: { comment: null, webhook: closed.url } }),
            job('on-failure', { kind: 'dummy', needs: { refused: ['exception'] } }),
          ]),
        );
        expect(await replica.runNotifications()).toBe(2);
        const status = await graphs.status(graphId);
        expect(await graphs.states(graphId)).toEqual({
          'on-failure': 'done success',
          refused: 'done exception',
          unreachable: 'done exception',
        });
        const logOf = async (label: string) => {
          const runId = status.job(label).runs[0]!.id;
          const chunks = await database.db
            .select()
            .from(logChunks)
            .where(eq(logChunks.runId, runId));
          return chunks.map((chunk) => chunk.data).join('');
        };
        expect(await logOf('refused')).toBe(
          `notification failed: webhook ${hook.url} answered HTTP 500\n`,
        );
        // Words, not the socket's text (which names addresses and ports).
        expect(await logOf('unreachable')).toBe(
          `notification failed: webhook ${closed.url} could not be reached: the connection was refused\n`,
        );
        expect(status.graph).toMatchObject({ state: 'done', result: 'failure' });
      } finally {
        await hook.close();
      }
    });

    it('from an untrusted graph call no webhook, and say so (the attack)', async () => {
      const hook = await webhookServer();
      const replica = createScheduler({
        db: database.db,
        clock,
        notify: createNotifyAdapter({ allowHosts: loopbackAllowed }),
      });
      try {
        const { graphId } = await graphs.create(
          graphSpec('fork', [
            job('hook-only', { kind: 'notify', notify: { comment: null, webhook: hook.url } }),
            job('both', { kind: 'notify', notify: { comment: 'hello', webhook: hook.url } }),
          ]),
          { trust: 'untrusted' },
        );
        expect(await replica.runNotifications()).toBe(2);
        expect(hook.received).toEqual([]);
        const status = await graphs.status(graphId);
        expect(await graphs.states(graphId)).toEqual({
          both: 'done success',
          'hook-only': 'done skipped',
        });
        const logOf = async (label: string) => {
          const chunks = await database.db
            .select()
            .from(logChunks)
            .where(eq(logChunks.runId, status.job(label).runs[0]!.id));
          return chunks.map((chunk) => chunk.data).join('');
        };
        const withheld = `webhook ${hook.url} not called: graphs of untrusted pull requests (forks) do not call webhooks\n`;
        expect(await logOf('hook-only')).toBe(withheld);
        expect(await logOf('both')).toBe(`${withheld}notified: comment\n`);
        // A skip is not a failure: the graph is green.
        expect(status.graph).toMatchObject({ state: 'done', result: 'success' });
      } finally {
        await hook.close();
      }
    });

    it('to a loopback address end exception with a clean reason; nothing arrives (the attack)', async () => {
      const hook = await webhookServer();
      const replica = createScheduler({ db: database.db, clock, notify: createNotifyAdapter() });
      try {
        const { graphId } = await graphs.create(
          graphSpec('inside', [
            job('scan', { kind: 'notify', notify: { comment: null, webhook: hook.url } }),
            job('metadata', {
              kind: 'notify',
              notify: { comment: null, webhook: 'http://169.254.169.254/latest/meta-data/' },
            }),
          ]),
        );
        expect(await replica.runNotifications()).toBe(2);
        expect(hook.received).toEqual([]);
        const status = await graphs.status(graphId);
        const logOf = async (label: string) => {
          const chunks = await database.db
            .select()
            .from(logChunks)
            .where(eq(logChunks.runId, status.job(label).runs[0]!.id));
          return chunks.map((chunk) => chunk.data).join('');
        };
        expect(await logOf('scan')).toBe(
          `notification failed: webhook ${hook.url} refused: the address is loopback; an internal hook must be listed in TOWER_NOTIFY_ALLOW_HOSTS\n`,
        );
        expect(await logOf('metadata')).toMatch(/refused: the address is link-local/);
        expect(await graphs.states(graphId)).toEqual({
          metadata: 'done exception',
          scan: 'done exception',
        });
      } finally {
        await hook.close();
      }
    });

    it('are all sent in one pass, however many there are', async () => {
      const many = Array.from({ length: 45 }, (_, i) =>
        job(`tell-${i}`, { kind: 'notify', notify: { comment: `n${i}`, webhook: null } }),
      );
      const { graphId } = await graphs.create(graphSpec('many', many));
      expect(await scheduler.runNotifications()).toBe(45);
      expect(new Set(port.sent.map((n) => n.comment)).size).toBe(45);
      expect((await graphs.status(graphId)).graph).toMatchObject({ state: 'done' });
    });

    it('hand comments to the port with what a comment needs', async () => {
      const comments: Notification[] = [];
      const replica = createScheduler({
        db: database.db,
        clock,
        notify: createNotifyAdapter({ comment: async (n) => void comments.push(n) }),
      });
      const tag = freshTag();
      const { graphId } = await graphs.create(
        graphSpec('comment', [
          job('test', { requires: [tag] }),
          job('report-failure', {
            kind: 'notify',
            notify: { comment: 'tests failed', webhook: null },
            needs: { test: ['failure'] },
          }),
        ]),
      );
      // Not pending until the test fails.
      expect(await replica.runNotifications()).toBe(0);
      const minion = await insertMinion(database.db, [tag]);
      await runNext(minion, 'failure');
      expect(await replica.runNotifications()).toBe(1);
      const status = await graphs.status(graphId);
      expect(comments).toEqual([
        {
          repositoryId: 10,
          sha: 'a'.repeat(40),
          event: { id: status.graph.eventId, type: 'push', branch: 'main' },
          graph: { id: graphId, name: 'comment' },
          job: { id: status.job('report-failure').id, label: 'report-failure' },
          runId: status.job('report-failure').runs[0]!.id,
          comment: 'tests failed',
          webhook: null,
        },
      ]);
      expect(status.job('report-failure')).toMatchObject({ state: 'done', result: 'success' });
    });

    it('run at once after the change that makes them pending, with the runner', async () => {
      const tag = freshTag();
      const sent = capturingPort();
      let wake = () => {};
      const replica = createScheduler({
        db: database.db,
        clock,
        notify: sent,
        onServerWork: () => wake(),
      });
      const runner = createServerJobRunner({
        scheduler: replica,
        logger: silent,
        intervalMs: 3600_000,
      });
      wake = () => runner.wake();
      runner.start();
      try {
        const past = new Date(clock.now().getTime() - 1000).toISOString();
        const { graphId } = await graphs.create(
          graphSpec('prompt', [
            job('build', { requires: [tag] }),
            job('started', { kind: 'notify', notify: { comment: 'started', webhook: null } }),
            job('late', {
              kind: 'timer',
              timer: { delaySeconds: null, at: past },
              needs: ['build'],
            }),
            job('done', {
              kind: 'notify',
              notify: { comment: 'done', webhook: null },
              needs: ['late'],
            }),
          ]),
          { via: replica },
        );
        await runner.settled();
        expect(sent.sent.map((n) => n.comment)).toEqual(['started']);
        // The build's report makes a timer due at once, which makes the last notification pending.
        const minion = await insertMinion(database.db, [tag]);
        const claim = (await replica.claim({ minionId: minion.id, leaseMs: LEASE }))!;
        await replica.finishRun({ runId: claim.runId, minionId: minion.id, result: 'success' });
        await runner.settled();
        expect(sent.sent.map((n) => n.comment)).toEqual(['started', 'done']);
        expect((await graphs.status(graphId)).graph).toMatchObject({
          state: 'done',
          result: 'success',
        });
      } finally {
        await runner.stop();
      }
    });

    it('are not sent again after a replica died while sending: the lease lapses', async () => {
      let release = () => {};
      const hanging: NotifyPort = {
        send: () =>
          new Promise<void>((resolve) => {
            release = resolve;
          }),
      };
      const dying = createScheduler({ db: database.db, clock, leaseClock: clock, notify: hanging });
      const { graphId } = await graphs.create(
        graphSpec('hang', [
          job('tell', { kind: 'notify', notify: { comment: 'hello', webhook: null } }),
        ]),
      );
      const sending = dying.runNotifications();
      // Wait until the job is taken (running), then let time pass beyond the lease.
      for (
        let i = 0;
        i < 100 && (await graphs.status(graphId)).job('tell').state !== 'running';
        i++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(await scheduler.runNotifications()).toBe(0);
      clock.advance(10 * 60);
      expect(await scheduler.expireLeases()).toBe(1);
      expect((await graphs.status(graphId)).job('tell')).toMatchObject({
        state: 'done',
        result: 'exception',
        reason: 'claim-expired',
      });
      // The send that comes back late changes nothing.
      release();
      await sending;
      expect((await graphs.status(graphId)).job('tell').runs).toHaveLength(1);
      expect(port.sent).toEqual([]);
      expect(await runsOf(database.db, (await graphs.status(graphId)).job('tell').id)).toEqual([
        expect.objectContaining({ state: 'done', result: 'exception', reason: 'claim-expired' }),
      ]);
    });
  });

  it('leave trigger jobs pending: peer clusters come later', async () => {
    const { graphId } = await graphs.create(
      graphSpec('trigger', [job('heavy', { kind: 'trigger' })]),
    );
    expect(await scheduler.fireTimers()).toBe(0);
    expect(await scheduler.runNotifications()).toBe(0);
    expect((await graphs.status(graphId)).job('heavy').state).toBe('pending');
  });
});
