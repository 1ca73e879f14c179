/**
 * PostgreSQL LISTEN/NOTIFY on one channel: "jobs may have become claimable",
 * with a payload naming the tag sets (src/minions/notifier.ts encodes it).
 * Only this folder touches the driver, so the minions' notifier reaches the
 * channel through these two functions.
 */
import { sql } from 'drizzle-orm';
import type { Sql } from 'postgres';
import type { TowerDb } from './connection.js';

export const JOBS_CHANNEL = 'tower_jobs';

/** Sent after the transaction that made jobs pending has committed. */
export async function notifyJobs(db: TowerDb, payload: string): Promise<void> {
  await db.execute(sql`select pg_notify(${JOBS_CHANNEL}, ${payload})`);
}

/**
 * Listens on a dedicated connection (postgres.js keeps one for LISTEN and
 * listens again after a reconnect). `onNotify` gets each payload, and
 * undefined when listening (re)starts, because notifications sent while
 * disconnected are lost. Resolves once LISTEN is in effect; the result
 * stops listening.
 */
export async function listenJobs(
  db: TowerDb,
  onNotify: (payload: string | undefined) => void,
): Promise<() => Promise<void>> {
  // drizzle's postgres-js database keeps its client as `$client`; TowerDb's type does not show it.
  const client = Reflect.get(db, '$client') as Sql;
  const listening = await client.listen(
    JOBS_CHANNEL,
    (payload) => onNotify(payload),
    () => onNotify(undefined),
  );
  return () => listening.unlisten();
}
