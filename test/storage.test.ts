import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { createDeliveryQueries } from '../src/db/deliveries.js';
import { createInstallationQueries } from '../src/db/installations.js';
import { backends, type TestDatabase } from './support/databases.js';

const t0 = new Date('2026-01-01T00:00:00Z');
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

const delivery = (id: string, receivedAt = t0) => ({
  id,
  event: 'installation',
  action: 'created',
  installationId: 1,
  payload: { action: 'created', installation: { id: 1 } },
  bodyHash: `body-of-${id}`,
  receivedAt,
});

describe.each(backends())('storage on $name', (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await backend.open();
  });
  afterAll(async () => {
    await database.dispose();
  });

  it('migrates an empty database, and migrating again changes nothing', async () => {
    const empty = await backend.open({ migrated: false });
    try {
      await empty.migrate();
      await empty.migrate();
      const result: unknown = await empty.db.execute(
        sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
      );
      // postgres.js answers with an array of rows, PGlite with { rows }.
      const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as {
        table_name: string;
      }[];
      const names = rows.map((row) => row.table_name);
      expect(names).toEqual([
        'api_tokens',
        'artifacts',
        'check_reports',
        'check_runs',
        'clusters',
        'events',
        'github_budgets',
        'github_content_requests',
        'graphs',
        'handled_comments',
        'installations',
        'job_approvals',
        'job_dependencies',
        'jobs',
        'landing_queue_entries',
        'landing_queues',
        'lease_watch',
        'log_chunks',
        'minions',
        'ok_to_test',
        'outgoing_comments',
        'pull_request_heads',
        'repositories',
        'runs',
        'tag_sets',
        'warm_minions',
        'webhook_deliveries',
      ]);
    } finally {
      await empty.dispose();
    }
  });

  it('answers a ping', async () => {
    await expect(database.ping()).resolves.toBeUndefined();
  });

  describe('webhook deliveries', () => {
    it('stores a delivery once, however often it arrives', async () => {
      const deliveries = createDeliveryQueries(database.db);
      const results = await Promise.all(
        Array.from({ length: 5 }, () => deliveries.record(delivery('dup-1'))),
      );
      expect(results.filter((r) => r.stored)).toHaveLength(1);
      expect(await deliveries.record(delivery('dup-1'))).toEqual({ stored: false });
      const row = await deliveries.get('dup-1');
      expect(row).toMatchObject({ event: 'installation', action: 'created', status: 'pending' });
      expect(row?.payload).toEqual({ action: 'created', installation: { id: 1 } });
    });

    it('leases the oldest due delivery to one claimant at a time', async () => {
      const deliveries = createDeliveryQueries(database.db);
      // Drain what earlier tests left, so that this test sees only its own.
      while (await deliveries.claim(at(1e6), 1e9)) {
        /* drained */
      }
      await deliveries.record(delivery('claim-b', at(2)));
      await deliveries.record(delivery('claim-a', at(1)));
      const [first, second, third] = await Promise.all([
        deliveries.claim(at(10), 60_000),
        deliveries.claim(at(10), 60_000),
        deliveries.claim(at(10), 60_000),
      ]);
      const claimed = [first, second, third].filter((c) => c !== undefined);
      expect(claimed.map((c) => c.id).sort()).toEqual(['claim-a', 'claim-b']);
      expect(claimed.every((c) => c.attempts === 1)).toBe(true);
      expect((await deliveries.get('claim-a'))?.status).toBe('processing');

      // Completed: never claimed again.
      await deliveries.complete({ id: 'claim-a', attempts: 1 }, at(11));
      expect(await deliveries.get('claim-a')).toMatchObject({
        status: 'done',
        processedAt: at(11),
      });

      // A lapsed lease is taken again, with the attempt counted.
      expect(await deliveries.claim(at(30), 60_000)).toBeUndefined();
      const retaken = await deliveries.claim(at(71), 60_000);
      expect(retaken).toMatchObject({ id: 'claim-b', attempts: 2 });
      await deliveries.complete({ id: 'claim-b', attempts: 2 }, at(72));
    });

    it('retries a failed delivery after its backoff, and gives up when told', async () => {
      const deliveries = createDeliveryQueries(database.db);
      await deliveries.record(delivery('fail-1', at(100)));
      expect((await deliveries.claim(at(100), 60_000))?.id).toBe('fail-1');
      await deliveries.fail({ id: 'fail-1', attempts: 1 }, at(101), 'boom', at(110));
      expect(await deliveries.get('fail-1')).toMatchObject({
        status: 'pending',
        lastError: 'boom',
      });
      expect(await deliveries.claim(at(105), 60_000)).toBeUndefined();
      expect(await deliveries.claim(at(110), 60_000)).toMatchObject({ id: 'fail-1', attempts: 2 });
      await deliveries.fail({ id: 'fail-1', attempts: 2 }, at(111), 'boom again', undefined);
      expect(await deliveries.get('fail-1')).toMatchObject({
        status: 'failed',
        processedAt: at(111),
      });
      expect(await deliveries.claim(at(10_000), 60_000)).toBeUndefined();
    });
  });

  describe('installations', () => {
    it('keeps installations and repositories current, and marks removals', async () => {
      const store = createInstallationQueries(database.db);
      const installation = {
        id: 42,
        accountLogin: 'octo-org',
        accountId: 7,
        accountType: 'Organization',
        repositorySelection: 'selected',
        suspendedAt: undefined,
      };
      await store.upsertInstallation(installation, at(1));
      await store.upsertInstallation({ ...installation, accountLogin: 'renamed-org' }, at(2));
      expect(await store.getInstallation(42)).toMatchObject({
        accountLogin: 'renamed-org',
        removedAt: null,
        createdAt: at(1),
        updatedAt: at(2),
      });

      await store.upsertRepositories(
        42,
        [
          { id: 100, fullName: 'octo-org/a', private: false },
          { id: 101, fullName: 'octo-org/b', private: true },
        ],
        at(3),
      );
      await store.upsertRepositories(
        42,
        [{ id: 100, fullName: 'octo-org/a2', private: false }],
        at(4),
      );
      await store.removeRepositories(42, [101], at(5));
      const repos = await store.listRepositories(42);
      expect(repos.map((r) => [r.fullName, r.removedAt])).toEqual([
        ['octo-org/a2', null],
        ['octo-org/b', at(5)],
      ]);

      // Re-adding a removed repository brings it back.
      await store.upsertRepositories(
        42,
        [{ id: 101, fullName: 'octo-org/b', private: true }],
        at(6),
      );
      expect((await store.listRepositories(42)).every((r) => r.removedAt === null)).toBe(true);

      await store.removeInstallation(42, at(7));
      expect((await store.getInstallation(42))?.removedAt).toEqual(at(7));
      expect((await store.listRepositories(42)).map((r) => r.removedAt)).toEqual([at(7), at(7)]);

      // Reinstalled.
      await store.upsertInstallation(installation, at(8));
      expect((await store.getInstallation(42))?.removedAt).toBeNull();
    });
  });
});
