import { describe, expect, it } from 'vitest';
import {
  ACTIONS,
  MAX_GROUPS,
  MAX_OUTPUT_CHARS,
  clip,
  conclusionOf,
  escapeMarkdown,
  groupJobs,
  renderCheckRuns,
  renderDefinitionErrors,
  type GraphReport,
  type ReportJob,
} from '../src/checks/render.js';
import { jobResults } from '../src/lib/graph-spec.js';

const at = (seconds: number) => new Date(Date.UTC(2026, 11, 1, 12, 0, seconds));

function job(label: string, options: Partial<ReportJob> = {}): ReportJob {
  return {
    id: label.length * 1000 + label.charCodeAt(label.length - 1),
    label,
    kind: 'command',
    state: 'pending',
    result: null,
    reason: null,
    run: null,
    log: null,
    artifacts: [],
    annotations: [],
    notes: [],
    source: { file: '.tower/ci.yml', line: 3 },
    ...options,
  };
}

function report(jobs: ReportJob[], options: Partial<GraphReport> = {}): GraphReport {
  return {
    graphId: 7,
    name: 'ci',
    sha: 'c'.repeat(40),
    state: 'running',
    result: null,
    createdAt: at(0),
    finishedAt: null,
    jobs,
    urls: {
      graph: 'https://tower/graphs/7',
      job: (id) => `https://tower/jobs/${id}`,
      log: (id) => `https://tower/api/v1/runs/${id}/log`,
    },
    ...options,
  };
}

const ran = (exitCode: number | null, seconds = 90) => ({
  id: 41,
  attempt: 2,
  minion: 'builder-1',
  exitCode,
  startedAt: at(0),
  finishedAt: at(seconds),
});

describe('check-run rendering', () => {
  it('maps every result to a GitHub conclusion', () => {
    expect(Object.fromEntries(jobResults.map((r) => [r, conclusionOf(r)]))).toEqual({
      success: 'success',
      warning: 'neutral',
      failure: 'failure',
      exception: 'failure',
      cancelled: 'cancelled',
      skipped: 'skipped',
      'timed-out': 'timed_out',
    });
  });

  it('shows each job as it is: waiting, running, done with its facts, inactive', () => {
    const runs = renderCheckRuns(
      report([
        job('blocked', { state: 'blocked' }),
        job('pending'),
        job('running', { state: 'running', run: { ...ran(null), finishedAt: null } }),
        job('failed', {
          state: 'done',
          result: 'failure',
          run: ran(2, 3725),
          log: { head: 'first\nlines', tail: 'last\nlines', omitted: 1234 },
          artifacts: [{ name: 'out/[x].txt', url: 'https://tower/a', size: 5 }],
          notes: ['tower-annotations.json is not JSON: ignored'],
        }),
        job('lost', {
          state: 'done',
          result: 'exception',
          reason: 'claim-expired',
          run: ran(null, 30),
        }),
        job('short', {
          state: 'done',
          result: 'success',
          run: ran(0, 5),
          log: { head: 'ok', tail: '', omitted: 0 },
        }),
        job('off', { state: 'inactive' }),
      ]),
    );
    const byName = Object.fromEntries(runs.map((r) => [r.name, r]));
    expect(byName['ci / blocked']).toMatchObject({
      status: 'queued',
      output: { title: 'Waiting' },
    });
    expect(byName['ci / pending']).toMatchObject({ output: { title: 'Waiting for a minion' } });
    expect(byName['ci / running']).toMatchObject({
      status: 'in_progress',
      output: { summary: expect.stringContaining('Running on builder-1, attempt 2.') },
    });
    const failed = byName['ci / failed']!;
    expect(failed).toMatchObject({
      status: 'completed',
      conclusion: 'failure',
      completedAt: at(3725),
      output: { title: 'failure: exit code 2' },
      actions: [ACTIONS.retrigger, ACTIONS.retryFailed],
    });
    expect(failed.output.summary).toContain(
      'exit code 2 · took 1 h 2 min · on builder-1 · attempt 2',
    );
    expect(failed.output.summary).toContain('[out/\\[x\\].txt](https://tower/a) (5 bytes)');
    expect(failed.output.summary).toContain('> tower-annotations.json is not JSON: ignored');
    expect(failed.output.summary).toContain('defined at `.tower/ci.yml:3`');
    expect(failed.output.text).toContain('… 1234 characters left out');
    expect(failed.output.text).toContain('last\nlines');
    expect(byName['ci / lost']!.output.title).toBe(
      "exception: its minion stopped answering (the claim's lease lapsed)",
    );
    expect(byName['ci / lost']!.output.summary).toContain('took 30 s');
    expect(byName['ci / short']).toMatchObject({
      conclusion: 'success',
      output: { text: '```\nok\n```' },
      actions: [ACTIONS.retrigger],
    });
    expect(byName['ci / off']).toMatchObject({
      status: 'completed',
      conclusion: 'skipped',
      actions: [ACTIONS.run],
    });
    expect(byName['Tower: ci']).toMatchObject({
      status: 'in_progress',
      output: { title: '1 failure, 1 exception, 1 success, 1 running, 2 waiting, 1 inactive' },
      actions: [ACTIONS.retryFailed],
    });
  });

  it('concludes the summary with the graph, and lists what failed', () => {
    const done = renderCheckRuns(
      report([job('a', { state: 'done', result: 'success' })], {
        state: 'done',
        result: 'success',
        finishedAt: at(9),
      }),
    )[0]!;
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success', completedAt: at(9) });
    const cancelled = renderCheckRuns(
      report([job('a', { state: 'done', result: 'cancelled' })], {
        state: 'done',
        result: 'cancelled',
      }),
    )[0]!;
    expect(cancelled.conclusion).toBe('cancelled');
    const failures = Array.from({ length: 60 }, (_, i) =>
      job(`t${String(i).padStart(2, '0')}`, { state: 'done', result: 'failure' }),
    );
    const failed = renderCheckRuns(report(failures, { state: 'done', result: 'failure' }), {
      maxJobCheckRuns: 100,
    })[0]!;
    expect(failed.conclusion).toBe('failure');
    expect(failed.output.summary).toContain('- … and 10 more');
    expect(renderCheckRuns(report([]))[0]).toMatchObject({
      status: 'queued',
      output: { title: 'no jobs' },
    });
  });

  it('groups a large graph by label prefix, and merges groups beyond the most it shows', () => {
    const chunks = ['unit', 'e2e'].flatMap((name) =>
      Array.from({ length: 30 }, (_, i) =>
        job(`${name}/${i + 1}`, {
          id: (name === 'unit' ? 1000 : 2000) + i,
          state: 'done',
          result: name === 'e2e' && i === 4 ? 'failure' : 'success',
          run: ran(0, i),
        }),
      ),
    );
    const runs = renderCheckRuns(report(chunks));
    expect(runs.map((r) => r.name)).toEqual([
      'Tower: ci',
      'ci / e2e (30 jobs)',
      'ci / unit (30 jobs)',
    ]);
    expect(runs[1]).toMatchObject({
      status: 'completed',
      conclusion: 'failure',
      output: { title: '30 jobs: 1 failure, 29 success.' },
      actions: [ACTIONS.retryFailed],
    });
    // Failures first in the table.
    expect(runs[1]!.output.text!.split('\n')[2]).toContain('[e2e/5]');
    expect(runs[2]).toMatchObject({ conclusion: 'success', actions: [] });

    const waiting = renderCheckRuns(
      report(chunks.map((j) => ({ ...j, state: 'pending', result: null, run: null }))),
    );
    expect(waiting[1]).toMatchObject({ status: 'queued', conclusion: null, completedAt: null });
    const inactive = renderCheckRuns(
      report(chunks.map((j) => ({ ...j, state: 'inactive', result: null }))),
    );
    expect(inactive[1]).toMatchObject({ status: 'completed', conclusion: 'skipped' });

    const many = Array.from({ length: 45 }, (_, i) => job(`suite${String(i).padStart(2, '0')}`));
    const groups = groupJobs(many);
    expect(groups.length).toBeLessThanOrEqual(MAX_GROUPS);
    expect(groups[0]![0]).toBe('suite00 … suite02');
    expect(groups.flatMap(([, jobs]) => jobs)).toHaveLength(45);
  });

  it('cuts tables and text to GitHub’s limits, saying so', () => {
    const jobs = Array.from({ length: 2000 }, (_, i) =>
      job(`a-rather-long-job-label-for-the-table-${String(i).padStart(4, '0')}`, {
        state: 'done',
        result: 'success',
      }),
    );
    const [summary] = renderCheckRuns(report(jobs));
    expect(summary!.output.text!.length).toBeLessThanOrEqual(MAX_OUTPUT_CHARS);
    expect(summary!.output.text).toMatch(/… and \d+ more jobs: see the \[graph\]/);
    expect(clip('x'.repeat(100), 50)).toHaveLength(50);
    expect(clip('short', 50)).toBe('short');
    expect(escapeMarkdown('a_b*c[d](e)`f`|g<h>')).toBe('a\\_b\\*c\\[d\\]\\(e\\)\\`f\\`\\|g\\<h\\>');
  });

  it('reports definition errors with an annotation at each line', () => {
    const run = renderDefinitionErrors({
      sha: 'd'.repeat(40),
      detailsUrl: 'https://tower/docs',
      errors: [
        {
          file: '.tower/ci.yml',
          line: 4,
          column: 7,
          message: 'unknown job `biuld`',
          severity: 'error',
        },
        {
          file: '.tower/ci.yml',
          line: 9,
          column: 1,
          message: 'unused template',
          severity: 'warning',
        },
      ],
    });
    expect(run).toMatchObject({
      name: 'Tower: .tower/',
      status: 'completed',
      conclusion: 'failure',
      output: { title: '1 error in .tower/, 1 warning' },
      annotations: [
        { path: '.tower/ci.yml', start_line: 4, end_line: 4, annotation_level: 'failure' },
        { path: '.tower/ci.yml', start_line: 9, end_line: 9, annotation_level: 'warning' },
      ],
    });
    expect(run.output.summary).toContain('`.tower/ci.yml:4:7` error: unknown job \\`biuld\\`');
    const lots = renderDefinitionErrors({
      sha: 'd'.repeat(40),
      detailsUrl: 'https://tower/docs',
      errors: Array.from({ length: 120 }, (_, i) => ({
        file: '.tower/ci.yml',
        line: i + 1,
        column: 1,
        message: 'bad',
        severity: 'error' as const,
      })),
    });
    expect(lots.output.title).toBe('120 errors in .tower/');
    expect(lots.output.summary).toContain('- … and 20 more');
    expect(lots.annotations).toHaveLength(120);
  });
});
