/**
 * Wake-ups for long-polling claims: "jobs of these
 * tag sets may have become claimable". A notification names the keys of
 * the tag sets (or says `all`). In-process on PGlite (one process owns the
 * database), LISTEN/NOTIFY on PostgreSQL so that replicas wake each other.
 *
 * Not every waiter of a named set wakes, which would be a herd of claims
 * for one job: one does, the one waiting longest (on each replica). A woken
 * claim that takes a job passes the wake-up on to two more waiters of its
 * sets, since more jobs may be waiting (a burst of work fans out); one that
 * finds nothing stops the chain: an ordinary waiter may take any job of its
 * sets, so finding nothing means that nothing is left. Restricted minions
 * (which take only named jobs) cannot say that, so they always wake.
 */
import { listenJobs, notifyJobs } from '../db/job-notifications.js';
import type { TowerDb } from '../db/connection.js';
import type { Logger } from '../lib/logger.js';

/** Tag set keys whose sets got claimable jobs, or every set. */
export type Claimable = readonly string[] | 'all';

export type Interest = {
  /** Whether the waiter may take jobs of the tag set with this key. */
  accepts(tagSetKey: string): boolean;
  /** It takes only some jobs of its sets (a restricted minion): it wakes for every one. */
  picky?: boolean;
};

/** A waiter's side of a subscription. */
export type Subscription = {
  /** The waiter sleeps again: it may be chosen for the next wake-up. */
  ready(): void;
  /** Its claim took a job, or it stops waiting with a wake-up unused: wake others for these sets. */
  pass(claimable: Claimable): void;
  close(): void;
};

export type Notifier = {
  /** Call after the transaction that made jobs pending has committed. Never rejects. */
  notify(claimable?: Claimable): Promise<void>;
  /**
   * Calls `listener` with the sets it is woken for, until the subscription
   * is closed. Without an interest, every notification reaches it. Resolves
   * once notifications reach the listener, so a claim tried after it cannot
   * miss one sent meanwhile (a waiter busy claiming is woken when no
   * sleeping one is there).
   */
  subscribe(listener: (claimable: Claimable) => void, interest?: Interest): Promise<Subscription>;
  close(): Promise<void>;
};

/** Both sets of wake-ups; undefined when neither has any. */
export function mergeClaimable(
  a: Claimable | undefined,
  b: Claimable | undefined,
): Claimable | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  if (a === 'all' || b === 'all') return 'all';
  return [...new Set([...a, ...b])];
}

type Waiter = {
  listener: (claimable: Claimable) => void;
  interest: Interest | undefined;
  /** Sleeping, not yet woken: chosen before waiters busy claiming. */
  ready: boolean;
};

/** Waiters a notification wakes per named set; a successful claim passes to this many. */
const WAKE_FIRST = 1;
const PASS_ON = 2;

/**
 * The waiters of one process, queued by tag set (longest waiting first): a
 * notification costs time in proportion to the waiters it wakes, not to
 * every waiter. A key's queue is built when a notification first names it;
 * each new waiter joins the queues of the keys it accepts.
 */
export class Waiters {
  private readonly waiters = new Set<Waiter>();
  /** Waiters without an interest: they hear everything. */
  private readonly everything = new Set<Waiter>();
  private readonly byKey = new Map<string, Set<Waiter>>();

  add(listener: (claimable: Claimable) => void, interest?: Interest): Subscription {
    const waiter: Waiter = { listener, interest, ready: false };
    this.waiters.add(waiter);
    if (!interest) this.everything.add(waiter);
    else for (const [key, queue] of this.byKey) if (interest.accepts(key)) queue.add(waiter);
    return {
      ready: () => {
        waiter.ready = true;
      },
      pass: (claimable) => this.wake(claimable, PASS_ON, waiter),
      close: () => {
        this.waiters.delete(waiter);
        this.everything.delete(waiter);
        if (interest) for (const queue of this.byKey.values()) queue.delete(waiter);
      },
    };
  }

  /** Wakes `count` waiters of each named set (and those that must hear every one). */
  wake(claimable: Claimable, count = WAKE_FIRST, except?: Waiter): void {
    if (claimable === 'all') {
      for (const waiter of [...this.waiters]) this.call(waiter, 'all');
      return;
    }
    const woken = new Map<Waiter, string[]>();
    const add = (waiter: Waiter, key: string) => {
      const keys = woken.get(waiter);
      if (keys) keys.push(key);
      else woken.set(waiter, [key]);
    };
    for (const waiter of this.everything) for (const key of claimable) add(waiter, key);
    for (const key of claimable) {
      const queue = this.queueOf(key);
      const chosen: Waiter[] = [];
      const busy: Waiter[] = [];
      for (const waiter of queue) {
        if (waiter === except) continue;
        if (waiter.interest?.picky) add(waiter, key);
        else if (waiter.ready && chosen.length < count) chosen.push(waiter);
        else if (!waiter.ready && busy.length < count) busy.push(waiter);
      }
      // A waiter busy claiming tries again after its attempt: it stands in when none sleeps.
      chosen.push(...busy.slice(0, count - chosen.length));
      for (const waiter of chosen) {
        // Chosen for this set: another set's wake-up goes to another waiter if there is one.
        waiter.ready = false;
        add(waiter, key);
        // Woken: to the back of the queue.
        queue.delete(waiter);
        queue.add(waiter);
      }
    }
    for (const [waiter, keys] of woken) this.call(waiter, keys);
  }

  get size(): number {
    return this.waiters.size;
  }

  clear(): void {
    this.waiters.clear();
    this.everything.clear();
    this.byKey.clear();
  }

  private call(waiter: Waiter, claimable: Claimable): void {
    waiter.ready = false;
    waiter.listener(claimable);
  }

  private queueOf(key: string): Set<Waiter> {
    let queue = this.byKey.get(key);
    if (!queue) {
      queue = new Set();
      for (const waiter of this.waiters) if (waiter.interest?.accepts(key)) queue.add(waiter);
      this.byKey.set(key, queue);
    }
    return queue;
  }
}

export function createInProcessNotifier(): Notifier {
  const waiters = new Waiters();
  return {
    async notify(claimable = 'all') {
      waiters.wake(claimable);
    },
    async subscribe(listener, interest) {
      return waiters.add(listener, interest);
    },
    async close() {
      waiters.clear();
    },
  };
}

/** NOTIFY payloads are limited to 8,000 bytes; a longer list becomes `all`. */
const MAX_PAYLOAD = 7900;

/** The payload: `all`, or the keys as a JSON array. */
export function encodeClaimable(claimable: Claimable): string {
  if (claimable === 'all') return 'all';
  const payload = JSON.stringify(claimable);
  return Buffer.byteLength(payload) > MAX_PAYLOAD ? 'all' : payload;
}

/** Anything but a JSON array of strings (a lost or foreign payload) wakes everyone. */
export function decodeClaimable(payload: string | undefined): Claimable {
  if (payload === undefined || !payload.startsWith('[')) return 'all';
  try {
    const keys: unknown = JSON.parse(payload);
    return Array.isArray(keys) && keys.every((key) => typeof key === 'string') ? keys : 'all';
  } catch {
    return 'all';
  }
}

/**
 * One LISTEN connection per process, opened at the first subscription and
 * fanned out to local waiters; this process's own NOTIFYs come back through it.
 */
export function createPostgresNotifier({ db, logger }: { db: TowerDb; logger: Logger }): Notifier {
  const waiters = new Waiters();
  let listening: Promise<() => Promise<void>> | undefined;
  const startListening = () => {
    listening ??= listenJobs(db, (payload) => waiters.wake(decodeClaimable(payload))).catch(
      (error: unknown) => {
        listening = undefined;
        throw error;
      },
    );
    return listening;
  };
  return {
    async notify(claimable = 'all') {
      try {
        await notifyJobs(db, encodeClaimable(claimable));
      } catch (error) {
        // The change is committed; waiters find it when their wait ends.
        logger.warn({ err: error }, 'job notification failed');
      }
    },
    async subscribe(listener, interest) {
      await startListening();
      return waiters.add(listener, interest);
    },
    async close() {
      waiters.clear();
      const unlisten = await listening?.catch(() => undefined);
      listening = undefined;
      await unlisten?.().catch(() => undefined);
    },
  };
}
