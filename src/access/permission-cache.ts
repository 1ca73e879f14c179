/**
 * Answers GitHub gave about who may read what, kept briefly: a page with a
 * live log asks again and again, and GitHub's rate limit is per person.
 * Bounded: the oldest answer goes first when it is full.
 */
import type { Clock } from '../lib/clock.js';

export function createPermissionCache(options: {
  ttlMs: number;
  maxEntries: number;
  clock: Clock;
}) {
  const entries = new Map<string, { allowed: boolean; until: number }>();
  return {
    get(key: string): boolean | undefined {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.until <= options.clock.now().getTime()) {
        entries.delete(key);
        return undefined;
      }
      return entry.allowed;
    },
    set(key: string, allowed: boolean): void {
      entries.delete(key);
      if (entries.size >= options.maxEntries) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      entries.set(key, { allowed, until: options.clock.now().getTime() + options.ttlMs });
    },
    get size() {
      return entries.size;
    },
  };
}

export type PermissionCache = ReturnType<typeof createPermissionCache>;
