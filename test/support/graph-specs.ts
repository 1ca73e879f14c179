/** Builders of graph specs for the graph tests. */
import {
  defaultCondition,
  finishedResults,
  jobResults,
  type DependencySpec,
  type JobResult,
  type JobSpec,
} from '../../src/lib/graph-spec.js';

export type Needs = string[] | Record<string, JobResult[] | 'finished' | 'any'>;

export function dependencies(needs: Needs | undefined): DependencySpec[] {
  if (!needs) return [];
  if (Array.isArray(needs)) return needs.map((job) => ({ job, results: [...defaultCondition] }));
  return Object.entries(needs).map(([job, condition]) => ({
    job,
    results:
      condition === 'finished'
        ? [...finishedResults]
        : condition === 'any'
          ? [...jobResults]
          : condition,
  }));
}

/** A job with every field at its default for its kind. */
export function job(label: string, options: Partial<JobSpec> & { needs?: Needs } = {}): JobSpec {
  const { needs, ...rest } = options;
  const kind = rest.kind ?? 'command';
  return {
    label,
    kind,
    inactive: false,
    filtered: false,
    requires: [],
    priority: 0,
    retries: 0,
    maxRuntime: null,
    idleTimeout: null,
    requestTimeout: null,
    dependencies: dependencies(needs),
    command: kind === 'command' ? `make ${label}` : null,
    env: {},
    artifacts: [],
    chunk: null,
    dummy: kind === 'dummy' ? { result: null } : null,
    breakpoint: kind === 'breakpoint' ? { approvers: ['team:qa'] } : null,
    timer: kind === 'timer' ? { delaySeconds: 60, at: null } : null,
    notify: kind === 'notify' ? { comment: 'hello', webhook: null } : null,
    trigger: kind === 'trigger' ? { cluster: 'big-farm', graph: 'full' } : null,
    source: { file: '.tower/tower.yml', line: 1, column: 1 },
    ...rest,
  };
}
