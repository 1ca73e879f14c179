import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  finishedResults,
  jobResults,
  type GraphSpec,
  type JobSpec,
} from '../src/lib/graph-spec.js';
import {
  GraphCycleError,
  InvalidGraphError,
  checkGraph,
  problemText,
  compareLabels,
  conditionName,
  cycleMessage,
  dependents,
  graphIndex,
  inactiveJobs,
  topologicalOrder,
} from '../src/graph/model.js';
import { dependencies, job } from './support/graph-specs.js';

// ---------------------------------------------------------------------------
// Builders

/** Keeps the jobs in the order given, so tests can check that nothing relies on it. */
function graph(...jobs: JobSpec[]): GraphSpec {
  return {
    version: 1,
    graph: 'test',
    event: { type: 'push', branch: 'main', sha: 'a'.repeat(40), changedFiles: null },
    defines: {},
    jobs,
  };
}

const messages = (spec: GraphSpec) => checkGraph(spec).map((p) => `${p.job ?? '-'}: ${p.message}`);

// ---------------------------------------------------------------------------

describe('checkGraph', () => {
  it('accepts a well-formed graph of every kind', () => {
    const spec = graph(
      job('build', { requires: ['linux'], chunk: { index: 1, count: 2 } }),
      job('test', { needs: ['build'], chunk: { min: 1, max: 8 } }),
      job('group', { kind: 'dummy', needs: { test: 'finished' } }),
      job('qa', { kind: 'breakpoint' }),
      job('wait', { kind: 'timer', timer: { delaySeconds: null, at: '03:00' } }),
      job('tell', { kind: 'notify', needs: { test: ['failure'] } }),
      job('heavy', { kind: 'trigger', needs: { qa: 'any' } }),
    );
    expect(checkGraph(spec)).toEqual([]);
  });

  it('reports an unsupported version', () => {
    const spec = { ...graph(job('a')), version: 2 } as unknown as GraphSpec;
    expect(messages(spec)).toEqual([
      '-: unsupported graph spec version 2 (this Tower reads version 1)',
    ]);
  });

  it('reports duplicate labels once each, and empty labels', () => {
    expect(messages(graph(job('a'), job('a'), job('a'), job(''), job('b')))).toEqual([
      'a: duplicate label "a"',
      ': empty label',
    ]);
  });

  it('reports unknown, self and repeated dependencies, and empty conditions', () => {
    const spec = graph(
      job('a', { needs: ['ghost'] }),
      job('b', { needs: ['b'] }),
      job('c', { dependencies: [...dependencies(['a']), ...dependencies(['a'])] }),
      job('d', { needs: { a: [] } }),
    );
    expect(messages(spec)).toEqual([
      'a: depends on unknown job "ghost"',
      'b: depends on itself',
      'c: depends on "a" more than once',
      'd: dependency on "a" has an empty condition list, so it can never be satisfied',
    ]);
  });

  it('names each cycle, starting from its smallest label', () => {
    const spec = graph(
      job('c', { needs: ['b'] }),
      job('b', { needs: ['a'] }),
      job('a', { needs: ['c'] }),
      job('x', { needs: ['y', 'a'] }),
      job('y', { needs: ['x'] }),
      job('free', { needs: ['x'] }),
    );
    expect(messages(spec)).toEqual(['a: cycle: a → b → c → a', 'x: cycle: x → y → x']);
  });

  it('names the shortest cycle through the smallest label of a tangle', () => {
    // a → b → c → d → a, with the shortcut b → a.
    const spec = graph(
      job('a', { needs: ['d', 'b'] }),
      job('b', { needs: ['a'] }),
      job('c', { needs: ['b'] }),
      job('d', { needs: ['c'] }),
    );
    expect(messages(spec)).toEqual(['a: cycle: a → b → a']);
  });

  it('reports kind-specific settings missing or misplaced', () => {
    const spec = graph(
      job('t', { kind: 'trigger', trigger: null }),
      job('n', { kind: 'notify', dummy: { result: null } }),
      job('c', { command: '' }),
      job('c2', { timer: { delaySeconds: 1, at: null } }),
      job('d', { kind: 'dummy', command: 'echo', requires: ['linux'] }),
      job('w', { kind: 'timer', timer: { delaySeconds: null, at: null } }),
      job('k1', { chunk: { index: 3, count: 2 } }),
      job('k2', { chunk: { index: 0, count: 2 } }),
      job('k3', { chunk: { min: 4, max: 2 } }),
      job('k4', { chunk: { min: 0, max: 2 } }),
    );
    expect(messages(spec)).toEqual([
      't: trigger job has no trigger settings',
      'n: notify job has dummy settings',
      'c: command job has no command',
      'c2: command job has timer settings',
      'd: dummy job has a command',
      'd: dummy job requires minion tags',
      'w: timer job has neither a delay nor a time',
      'k1: chunk 3 of 2 is out of range',
      'k2: chunk 0 of 2 is out of range',
      'k3: chunk range 4–2 is empty or starts below 1',
      'k4: chunk range 0–2 is empty or starts below 1',
    ]);
  });
});

describe('topologicalOrder', () => {
  it('puts dependencies first and, among ready jobs, the smallest label first', () => {
    const spec = graph(
      job('z-last', { needs: ['m', 'b'] }),
      job('m', { needs: ['a'] }),
      job('b'),
      job('a'),
      job('c', { needs: ['b'] }),
    );
    expect(topologicalOrder(spec)).toEqual(['a', 'b', 'c', 'm', 'z-last']);
  });

  it('returns a copy the caller may change', () => {
    const spec = graph(job('a'), job('b'));
    topologicalOrder(spec).reverse();
    expect(topologicalOrder(spec)).toEqual(['a', 'b']);
  });

  it('throws GraphCycleError naming the cycle', () => {
    const spec = graph(
      job('a', { needs: ['c'] }),
      job('b', { needs: ['a'] }),
      job('c', { needs: ['b'] }),
    );
    const error = catchError(() => topologicalOrder(spec));
    expect(error).toBeInstanceOf(GraphCycleError);
    expect(error).toMatchObject({ cycle: ['a', 'b', 'c', 'a'], graph: 'test' });
    expect((error as Error).message).toContain('a: cycle: a → b → c → a');
  });

  it('treats a self-dependency as the shortest cycle', () => {
    const error = catchError(() => topologicalOrder(graph(job('a'), job('b', { needs: ['b'] }))));
    expect(error).toMatchObject({ name: 'GraphCycleError', cycle: ['b', 'b'] });
  });

  it('lists every problem in the error message', () => {
    const error = new InvalidGraphError('g', [
      { job: null, message: 'unsupported graph spec version 2' },
      { job: 'a', message: 'depends on itself' },
    ]);
    expect(error.message).toBe(
      'Invalid graph g:\n  (graph): unsupported graph spec version 2\n  a: depends on itself',
    );
    expect(error.name).toBe('InvalidGraphError');
  });

  it('throws InvalidGraphError on duplicates or unknown dependencies', () => {
    const error = catchError(() => topologicalOrder(graph(job('a'), job('a', { needs: ['x'] }))));
    expect(error).toBeInstanceOf(InvalidGraphError);
    expect(error).not.toBeInstanceOf(GraphCycleError);
    expect((error as InvalidGraphError).problems).toHaveLength(1);
    expect(() => topologicalOrder(graph(job('a', { needs: ['a', 'x'] })))).toThrow(
      /depends on unknown job "x"/,
    );
  });

  it('does not depend on the order of the job list, and respects every edge', () => {
    const specArb = fc
      .array(fc.array(fc.nat(), { maxLength: 3 }), { minLength: 1, maxLength: 25 })
      .chain((drafts) =>
        fc.tuple(
          fc.constant(drafts),
          fc.shuffledSubarray(
            drafts.map((_, i) => i),
            {
              minLength: drafts.length,
            },
          ),
        ),
      );
    fc.assert(
      fc.property(specArb, ([drafts, permutation]) => {
        // Labels in an order unrelated to the dependency order.
        const name = (i: number) => `job-${(i * 7919) % 1000}-${i}`;
        const jobs = drafts.map((ups, i) =>
          job(name(i), { needs: i === 0 ? [] : [...new Set(ups.map((u) => name(u % i)))] }),
        );
        const order = topologicalOrder(graph(...jobs));
        const shuffled = topologicalOrder(graph(...permutation.map((i) => jobs[i]!)));
        expect(shuffled).toEqual(order);
        const at = new Map(order.map((l, i) => [l, i]));
        for (const j of jobs) {
          for (const dep of j.dependencies) expect(at.get(dep.job)!).toBeLessThan(at.get(j.label)!);
        }
        expect(checkGraph(graph(...jobs))).toEqual([]);
      }),
      { numRuns: 1000 },
    );
  });

  it('orders a long chain without running out of stack', () => {
    const jobs = Array.from({ length: 20_000 }, (_, i) =>
      job(`j${String(i).padStart(5, '0')}`, {
        needs: i === 0 ? [] : [`j${String(i - 1).padStart(5, '0')}`],
      }),
    );
    // Close the chain into one huge cycle: Tarjan must be iterative to name it.
    const closed = [
      { ...jobs[0]!, dependencies: dependencies([jobs.at(-1)!.label]) },
      ...jobs.slice(1),
    ];
    expect(topologicalOrder(graph(...jobs))).toHaveLength(20_000);
    const problems = checkGraph(graph(...closed));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/^cycle: j00000 → j00001 → .* → j19999 → j00000$/);
  });
});

describe('index helpers', () => {
  const spec = graph(
    job('a'),
    job('b', { needs: ['a'] }),
    job('c', { needs: ['a', 'b'] }),
    job('off', { inactive: true }),
    job('after-off', { needs: ['off', 'a'] }),
    job('after-after', { needs: ['after-off'] }),
  );

  it('indexes dependents once per spec', () => {
    expect(Object.fromEntries(dependents(spec))).toEqual({
      a: ['b', 'c', 'after-off'],
      b: ['c'],
      c: [],
      off: ['after-off'],
      'after-off': ['after-after'],
      'after-after': [],
    });
    expect(dependents(spec)).toBe(dependents(spec));
    expect(graphIndex(spec).position.get('a')).toBe(0);
  });

  it('finds effectively inactive jobs, even in a malformed spec', () => {
    expect([...inactiveJobs(spec)].sort()).toEqual(['after-after', 'after-off', 'off']);
    const cyclic = graph(
      job('x', { inactive: true, needs: ['y'] }),
      job('y', { needs: ['x', 'ghost'] }),
      job('x', { inactive: true }),
    );
    expect([...inactiveJobs(cyclic)].sort()).toEqual(['x', 'y']);
  });

  it('names conditions for renderings', () => {
    expect(conditionName(['success', 'warning'])).toBeNull();
    expect(conditionName(['warning', 'success'])).toBeNull();
    expect(conditionName([...finishedResults])).toBe('finished');
    expect(conditionName([...jobResults])).toBe('any');
    expect(conditionName(['failure', 'exception'])).toBe('failure, exception');
    expect(conditionName(['success'])).toBe('success');
    expect(conditionName([])).toBe('(none)');
    expect(cycleMessage(['a', 'a'])).toBe('cycle: a → a');
    expect(problemText({ job: null, message: 'm' })).toBe('(graph): m');
    expect(['b', 'B', 'a', 'a'].sort(compareLabels)).toEqual(['B', 'a', 'a', 'b']);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
