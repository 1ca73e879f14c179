/**
 * The periodic loop that ends lapsed leases and applies timeouts. Times come
 * from the scheduler's clock (leases: the database's); the interval is
 * wall-clock time.
 *
 * A database outage is not the minions' fault: while the database is down
 * their heartbeats fail, and their leases lapse although they still work.
 * So each pass first records itself in the database (`watchLeases`), which
 * keeps, in the database's time, since when the database has answered
 * without a break. That stretch restarts after an outage, seen either way:
 * this replica's pass could not reach the database (it says so at its next
 * pass that can), or no replica's pass came for half a lease (at least three
 * intervals: every replica was down or stalled). Lapsed leases then end only
 * once the database has been up for a whole lease since, so that every
 * minion that lived through the outage has heartbeated (an agent heartbeats
 * every third of its lease) before its lease is judged. The record is one
 * row shared by every replica, so a replica that saw no outage (or just
 * started) waits too. docs/minions.md describes it for operators.
 */
import type { Logger } from '../lib/logger.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { DEFAULT_LEASE_SECONDS } from './schemas.js';

export type Maintenance = {
  /** One pass; what it changed. Tests call it directly. */
  tick(): Promise<{ expiredLeases: number; timeouts: number }>;
  start(): void;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
};

export function createMaintenance({
  scheduler,
  logger,
  intervalMs = 5000,
  leaseSeconds = DEFAULT_LEASE_SECONDS,
}: {
  /** The scheduler with wake-ups, so that a retry after a lapsed lease wakes claims. */
  scheduler: Pick<Scheduler, 'watchLeases' | 'expireLeases' | 'enforceTimeouts'>;
  logger: Logger;
  intervalMs?: number;
  /** The lease minions get (TOWER_LEASE_SECONDS): the grace after an outage. */
  leaseSeconds?: number;
}): Maintenance {
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<unknown> | undefined;
  /** A pass could not reach the database; the next that can says so. */
  let outage = false;
  const gapSeconds = Math.max(leaseSeconds / 2, (3 * intervalMs) / 1000);

  async function tick() {
    try {
      const watch = await scheduler.watchLeases({ outage, gapSeconds });
      if (watch.restarted) {
        logger.warn(
          { upSince: watch.upSince, graceSeconds: leaseSeconds },
          'passes resumed after an outage or a restart: lapsed leases wait a grace',
        );
      }
      outage = false;
    } catch (error) {
      outage = true;
      throw error;
    }
    const expiredLeases = await scheduler.expireLeases({ graceSeconds: leaseSeconds });
    const timeouts = await scheduler.enforceTimeouts();
    if (expiredLeases + timeouts > 0) logger.info({ expiredLeases, timeouts }, 'maintenance pass');
    return { expiredLeases, timeouts };
  }

  return {
    tick,
    start() {
      timer ??= setInterval(() => {
        // A slow pass is not overlapped by the next.
        pass ??= tick()
          .catch((error: unknown) => logger.error({ err: error }, 'maintenance pass failed'))
          .finally(() => {
            pass = undefined;
          });
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await pass;
    },
  };
}
