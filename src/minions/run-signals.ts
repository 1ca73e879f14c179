/**
 * In-process signals that a run has new log output or has ended, so that a
 * follower answers at once; followers also poll, which covers output taken by
 * another replica.
 */
import { EventEmitter } from 'node:events';

export type RunSignals = {
  emit(runId: number): void;
  subscribe(runId: number, listener: () => void): () => void;
};

export function createRunSignals(): RunSignals {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  return {
    emit: (runId) => void events.emit(String(runId)),
    subscribe(runId, listener) {
      events.on(String(runId), listener);
      return () => void events.off(String(runId), listener);
    },
  };
}
