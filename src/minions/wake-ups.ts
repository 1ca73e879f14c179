/**
 * The scheduler with wake-ups: every operation that may have made a job
 * claimable notifies waiting claims after it returns, that is after its
 * transaction committed. Everything that changes jobs goes through this one.
 */
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Notifier } from './notifier.js';

export function withWakeUps(scheduler: Scheduler, notifier: Notifier): Scheduler {
  const after =
    <I, O>(operation: (input: I) => Promise<O>, changed: (output: O) => boolean) =>
    async (input: I): Promise<O> => {
      const output = await operation(input);
      if (changed(output)) await notifier.notify();
      return output;
    };
  return {
    ...scheduler,
    createGraph: after(
      (input) => scheduler.createGraph(input),
      () => true,
    ),
    finishRun: after(
      (input) => scheduler.finishRun(input),
      (outcome) => outcome === 'ok',
    ),
    retrigger: after(
      (input) => scheduler.retrigger(input),
      (outcome) => outcome.ok,
    ),
    activate: after(
      (input) => scheduler.activate(input),
      (outcome) => outcome.ok,
    ),
    cancel: after(
      (input) => scheduler.cancel(input),
      (outcome) => outcome.ok,
    ),
    expireLeases: async () => {
      const count = await scheduler.expireLeases();
      if (count > 0) await notifier.notify();
      return count;
    },
    enforceTimeouts: async () => {
      const count = await scheduler.enforceTimeouts();
      if (count > 0) await notifier.notify();
      return count;
    },
  };
}
