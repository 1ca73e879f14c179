/** Rows that storage-level tests need before a graph can exist: an installation, a repository, events. */
import { randomUUID } from 'node:crypto';
import type { TowerDb } from '../../src/db/connection.js';
import { events, installations, repositories } from '../../src/db/schema.js';

export const FIXTURE_REPOSITORY_ID = 10;

/** The installation octo-org (1) and its repository octo-org/app (10). */
export async function insertRepositoryFixture(db: TowerDb): Promise<void> {
  await db.insert(installations).values({
    id: 1,
    accountLogin: 'octo-org',
    accountId: 7,
    accountType: 'Organization',
  });
  await db
    .insert(repositories)
    .values({ id: FIXTURE_REPOSITORY_ID, installationId: 1, fullName: 'octo-org/app' });
}

/** A push event on the fixture repository; returns its id. */
export async function insertEvent(db: TowerDb, sha = 'a'.repeat(40)): Promise<number> {
  const [row] = await db
    .insert(events)
    .values({
      repositoryId: FIXTURE_REPOSITORY_ID,
      type: 'push',
      dedupKey: `push-${randomUUID()}`,
      sha,
      payload: {},
    })
    .returning({ id: events.id });
  return row!.id;
}
