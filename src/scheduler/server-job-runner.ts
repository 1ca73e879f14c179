/**
 * Runs the server-side passes (src/scheduler/server-jobs.ts): due timers,
 * then pending notify jobs. At once when woken, that is after a commit that
 * made such a job runnable (the scheduler's `onServerWork`, composed in
 * src/main.ts), and every `intervalMs` for the rest: timers that come due
 * later, and work another replica committed (each replica wakes only itself;
 * the passes are safe on several replicas at once). Passes never overlap; a
 * wake-up during a pass runs one more pass after it.
 *
 * Why not the claim notifier (src/minions/notifier.ts): its notifications
 * name tag sets of command jobs, and server-side jobs have none, so it stays
 * silent when a notify job becomes pending.
 */
import type { Logger } from '../lib/logger.js';
import type { Scheduler } from './scheduler.js';

export type ServerJobRunner = {
  /** One pass; what it did. Tests call it directly. */
  tick(): Promise<{ timers: number; notifications: number }>;
  /** A pass soon (once started): server-side jobs became runnable. */
  wake(): void;
  start(): void;
  /** Stops waking and waits for a pass in progress. */
  stop(): Promise<void>;
  /** Resolves once no pass runs or is due to run. */
  settled(): Promise<void>;
};

export function createServerJobRunner({
  scheduler,
  logger,
  intervalMs = 5000,
}: {
  scheduler: Pick<Scheduler, 'fireTimers' | 'runNotifications'>;
  logger: Logger;
  intervalMs?: number;
}): ServerJobRunner {
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> | undefined;
  let again = false;

  async function tick() {
    const timers = await scheduler.fireTimers();
    const notifications = await scheduler.runNotifications();
    if (timers + notifications > 0) logger.info({ timers, notifications }, 'server jobs pass');
    return { timers, notifications };
  }

  function schedule(): void {
    if (!started) return;
    if (pass) {
      again = true;
      return;
    }
    pass = (async () => {
      do {
        again = false;
        await tick().catch((error: unknown) =>
          logger.error({ err: error }, 'server jobs pass failed'),
        );
      } while (again && started);
    })().finally(() => {
      pass = undefined;
      // A wake-up between the last check and here must not be lost.
      if (again) schedule();
    });
  }

  return {
    tick,
    wake: schedule,
    start() {
      started = true;
      timer ??= setInterval(schedule, intervalMs);
      timer.unref();
      schedule();
    },
    async stop() {
      started = false;
      clearInterval(timer);
      timer = undefined;
      await pass;
    },
    async settled() {
      while (pass) await pass;
    },
  };
}
