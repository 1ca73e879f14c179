/**
 * Issue 12: a restricted (signing) minion takes only named jobs of push
 * graphs for a protected branch. A land graph is built from the queued pull
 * requests' own `.tower/`: were it marked protected, a pull request could
 * name a job like the signing minion's label and run its command there.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, minions } from '../src/db/schema.js';
import type { EventType } from '../src/lib/graph-spec.js';
import { createScheduler, type Scheduler } from '../src/scheduler/scheduler.js';
import { backends, type TestDatabase } from './support/databases.js';
import { FIXTURE_REPOSITORY_ID, insertRepositoryFixture } from './support/fixtures.js';
import { job } from './support/graph-specs.js';
import { graphSpec, manualClock } from './support/scheduler-harness.js';

describe.each(backends())('restricted minions on $name', (backend) => {
  let database: TestDatabase;
  let scheduler: Scheduler;
  const clock = manualClock(new Date('2026-05-01T00:00:00Z'));

  beforeAll(async () => {
    database = await backend.open();
    scheduler = createScheduler({ db: database.db, clock });
    await insertRepositoryFixture(database.db);
  });
  afterAll(async () => {
    await database?.dispose();
  });

  async function graphOf(type: EventType, tag: string) {
    const [event] = await database.db
      .insert(events)
      .values({
        repositoryId: FIXTURE_REPOSITORY_ID,
        type,
        dedupKey: `${type}-${randomUUID()}`,
        sha: 'b'.repeat(40),
        payload: {},
      })
      .returning({ id: events.id });
    const { graphId } = await scheduler.createGraph({
      repositoryId: FIXTURE_REPOSITORY_ID,
      eventId: event!.id,
      spec: graphSpec(type, [job('sign', { requires: [tag] })]),
      trust: 'trusted',
      // As the landing queue marked its graphs before: the claim itself must refuse them.
      protectedBranch: true,
    });
    return graphId;
  }

  it('never hands a restricted minion a job of a land or pull request graph, even one marked protected', async () => {
    const tag = `signing-${randomUUID().slice(0, 8)}`;
    const land = await graphOf('land', tag);
    const pullRequest = await graphOf('pull_request', tag);
    const [row] = await database.db
      .insert(minions)
      .values({
        name: 'signer',
        tags: [tag],
        credentialHash: `restricted-${randomUUID()}`,
        trust: 'restricted',
        jobLabels: ['sign'],
      })
      .returning({ id: minions.id });
    const signer = { minionId: row!.id, leaseMs: 60_000 };
    expect(await scheduler.claim(signer)).toBeUndefined();

    // A push to a protected branch is what it is for.
    const push = await graphOf('push', tag);
    expect(await scheduler.claim(signer)).toMatchObject({ graphId: push, label: 'sign' });
    expect(await scheduler.claim(signer)).toBeUndefined();
    for (const graphId of [land, pullRequest, push]) await scheduler.cancel({ graphId });
  });
});
