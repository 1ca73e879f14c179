import { and, eq, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { webhookDeliveries } from './schema.js';

/** A timestamp parameter inside raw SQL; postgres.js takes no Date there. */
const timestamp = (date: Date) => sql`${date.toISOString()}::timestamptz`;

export type NewDelivery = {
  id: string;
  event: string;
  action: string | undefined;
  installationId: number | undefined;
  payload: unknown;
  /** SHA-256 of the event name and the raw body: a replay under a new id is stored once. */
  bodyHash: string;
  receivedAt: Date;
};

/** A claim of a delivery: `attempts` counts claims, so it tells this claim from a later one. */
export type DeliveryLease = { id: string; attempts: number };

export type ClaimedDelivery = {
  id: string;
  event: string;
  payload: unknown;
  attempts: number;
};

export type DeliveryStatus = (typeof webhookDeliveries.$inferSelect)['status'];

/**
 * Webhook deliveries as a queue in the database: stored once by delivery id
 * and by body, claimed with a lease by one replica, retried with backoff.
 */
export function createDeliveryQueries(db: TowerDb) {
  return {
    /** Stores a delivery unless one with the same id, or the same event and body, is already stored. */
    async record(delivery: NewDelivery): Promise<{ stored: boolean }> {
      const inserted = await db
        .insert(webhookDeliveries)
        .values({
          id: delivery.id,
          event: delivery.event,
          action: delivery.action ?? null,
          installationId: delivery.installationId ?? null,
          payload: delivery.payload,
          bodyHash: delivery.bodyHash,
          receivedAt: delivery.receivedAt,
          availableAt: delivery.receivedAt,
        })
        // Either unique key: the id (a redelivery) or the body hash (a replay).
        .onConflictDoNothing()
        .returning({ id: webhookDeliveries.id });
      return { stored: inserted.length === 1 };
    },

    /**
     * Takes the oldest delivery that is due, or whose processing lease has
     * lapsed, and leases it. Safe with many replicas: SKIP LOCKED.
     */
    async claim(now: Date, leaseMs: number): Promise<ClaimedDelivery | undefined> {
      const due = sql`(
        select ${webhookDeliveries.id} from ${webhookDeliveries}
        where ${webhookDeliveries.availableAt} <= ${timestamp(now)}
          and (${webhookDeliveries.status} = 'pending'
            or (${webhookDeliveries.status} = 'processing' and ${webhookDeliveries.leaseExpiresAt} < ${timestamp(now)}))
        order by ${webhookDeliveries.availableAt}
        limit 1
        for update skip locked
      )`;
      const [claimed] = await db
        .update(webhookDeliveries)
        .set({
          status: 'processing',
          attempts: sql`${webhookDeliveries.attempts} + 1`,
          leaseExpiresAt: new Date(now.getTime() + leaseMs),
        })
        .where(eq(webhookDeliveries.id, due))
        .returning({
          id: webhookDeliveries.id,
          event: webhookDeliveries.event,
          payload: webhookDeliveries.payload,
          attempts: webhookDeliveries.attempts,
        });
      return claimed;
    },

    /**
     * Marks the delivery done if `lease` still holds it; false when its lease
     * lapsed and another claim took it, which then decides.
     */
    async complete(lease: DeliveryLease, now: Date): Promise<boolean> {
      const updated = await db
        .update(webhookDeliveries)
        .set({ status: 'done', processedAt: now, leaseExpiresAt: null, lastError: null })
        .where(held(lease))
        .returning({ id: webhookDeliveries.id });
      return updated.length === 1;
    },

    /**
     * Records a failed attempt if `lease` still holds the delivery; with
     * `retryAt` it is tried again then, otherwise it stays failed.
     */
    async fail(
      lease: DeliveryLease,
      now: Date,
      error: string,
      retryAt: Date | undefined,
    ): Promise<boolean> {
      const updated = await db
        .update(webhookDeliveries)
        .set({
          status: retryAt ? 'pending' : 'failed',
          availableAt: retryAt ?? now,
          processedAt: retryAt ? null : now,
          leaseExpiresAt: null,
          lastError: error,
        })
        .where(held(lease))
        .returning({ id: webhookDeliveries.id });
      return updated.length === 1;
    },

    async get(id: string) {
      const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
      return row;
    },

    async count(): Promise<number> {
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(webhookDeliveries);
      return row?.n ?? 0;
    },
  };
}

/** The delivery is still in the hands of this claim: no later claim took it. */
function held(lease: DeliveryLease) {
  return and(
    eq(webhookDeliveries.id, lease.id),
    eq(webhookDeliveries.status, 'processing'),
    eq(webhookDeliveries.attempts, lease.attempts),
  );
}

export type DeliveryQueries = ReturnType<typeof createDeliveryQueries>;
