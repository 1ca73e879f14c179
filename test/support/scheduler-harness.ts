/**
 * What the server-side job tests share: a manual clock, a graph spec
 * builder, minions inserted as rows, and a scheduler per database whose
 * graphs are cancelled after each test (claims and leases are global).
 */
import { eq } from 'drizzle-orm';
import type { TowerDb } from '../../src/db/connection.js';
import { minions, runs } from '../../src/db/schema.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../../src/lib/graph-spec.js';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import { insertEvent } from './fixtures.js';

export function graphSpec(name: string, jobs: JobSpec[]): GraphSpec {
  return {
    version: GRAPH_SPEC_VERSION,
    graph: name,
    event: { type: 'push', branch: 'main', sha: 'a'.repeat(40), changedFiles: null },
    defines: {},
    jobs: [...jobs].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)),
  };
}

export type ManualClock = { now(): Date; advance(seconds: number): void };

/** A clock the tests move by hand; it only goes forward, across tests too. */
export function manualClock(start: Date): ManualClock {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000;
    },
  };
}

export type TestMinion = { id: number; tags: string[] };

let minionCounter = 0;

/** A minion row: active and trusted unless told otherwise, seen at `lastSeenAt` (default: never). */
export async function insertMinion(
  db: TowerDb,
  tags: string[],
  options: {
    lastSeenAt?: Date | null;
    state?: 'active' | 'quarantined' | 'retired';
    trust?: 'trusted' | 'untrusted' | 'restricted';
  } = {},
): Promise<TestMinion> {
  const n = ++minionCounter;
  const [row] = await db
    .insert(minions)
    .values({
      name: `minion-${n}`,
      tags,
      credentialHash: `server-jobs-hash-${n}-${Math.random()}`,
      lastSeenAt: options.lastSeenAt ?? null,
      state: options.state ?? 'active',
      trust: options.trust ?? 'trusted',
    })
    .returning({ id: minions.id });
  return { id: row!.id, tags };
}

export async function runsOf(db: TowerDb, jobId: number) {
  return db.select().from(runs).where(eq(runs.jobId, jobId)).orderBy(runs.attempt);
}

export function graphHelpers(scheduler: () => Scheduler, db: () => TowerDb) {
  const created: number[] = [];
  return {
    /** Stores the graph (through `via`, by default the scheduler); cleanUp cancels it. */
    async create(
      spec: GraphSpec,
      options: { trust?: 'trusted' | 'untrusted'; via?: Scheduler } = {},
    ) {
      const result = await (options.via ?? scheduler()).createGraph({
        repositoryId: 10,
        eventId: await insertEvent(db()),
        spec,
        trust: options.trust ?? 'trusted',
      });
      created.push(result.graphId);
      return result;
    },
    /** Cancels what the test left open. */
    async cleanUp() {
      for (const graphId of created.splice(0)) await scheduler().cancel({ graphId });
    },
    async status(graphId: number) {
      const status = (await scheduler().graphStatus({ graphId }))!;
      const byLabel = new Map(status.jobs.map((j) => [j.label, j]));
      return {
        ...status,
        job(label: string) {
          const job = byLabel.get(label);
          if (!job) throw new Error(`no job ${label} in graph ${graphId}`);
          return job;
        },
      };
    },
    async states(graphId: number): Promise<Record<string, string>> {
      const status = (await scheduler().graphStatus({ graphId }))!;
      return Object.fromEntries(
        status.jobs.map((j) => [
          j.label,
          j.state === 'done' ? `done ${j.result}${j.reason ? ` ${j.reason}` : ''}` : j.state,
        ]),
      );
    },
  };
}
