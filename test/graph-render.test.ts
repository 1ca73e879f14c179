import { instance } from '@viz-js/viz';
import { describe, expect, it } from 'vitest';
import { jobResults, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { renderDot, renderJson, renderText } from '../src/graph/render.js';
import {
  applyEvent,
  initialState,
  type GraphEvent,
  type GraphState,
} from '../src/graph/state-machine.js';
import { job } from './support/graph-specs.js';

// ---------------------------------------------------------------------------
// Builders

function graph(...jobs: JobSpec[]): GraphSpec {
  return {
    version: 1,
    graph: 'per-checkin',
    event: {
      type: 'pull_request',
      branch: 'feature/x',
      sha: '0123456789abcdef'.repeat(2) + '01234567',
      changedFiles: ['src/a.ts'],
    },
    defines: { nightly: false, max_priority: 50 },
    jobs: [...jobs].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)),
  };
}

/** Jobs with every kind, chunks, inactive and filtered jobs, and labels that need quoting. */
const spec = graph(
  job('build', { requires: ['linux', 'node'] }),
  job('test/1', { needs: ['build'], chunk: { index: 1, count: 2 }, requires: ['linux'] }),
  job('test/2', { needs: ['build'], chunk: { index: 2, count: 2 }, requires: ['linux'] }),
  job('unit', { needs: ['build'], chunk: { min: 1, max: 8 } }),
  job('lint.v2', { filtered: true }),
  job('say "hi"', { kind: 'notify', needs: { 'test/1': ['failure', 'exception'] } }),
  job('back\\slash', { kind: 'timer', needs: { build: 'any' } }),
  job('tests-done', { kind: 'dummy', needs: { 'test/1': 'finished', 'test/2': 'finished' } }),
  job('forced', { kind: 'dummy', dummy: { result: 'failure' } }),
  job('qa-signoff', { kind: 'breakpoint', needs: ['tests-done'] }),
  job('heavy', { kind: 'trigger', needs: ['qa-signoff'] }),
  job('pgo', { inactive: true, needs: ['build'] }),
  job('pgo-test', { needs: ['pgo'] }),
  job('pgo-docs', { inactive: true, filtered: true }),
);

/** Each node line of the DOT output, by node id. */
function nodeLines(dot: string): Map<string, string> {
  const lines = new Map<string, string>();
  for (const line of dot.split('\n')) {
    const match = /^ {2}("(?:[^"\\]|\\.)*") \[/.exec(line);
    if (match && !line.includes(' -> ')) lines.set(match[1]!, line);
  }
  return lines;
}

/** Graphviz writes `-` as `&#45;` and quotes as `&quot;` in SVG text. */
function unescapeSvg(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** SVG node groups by title (Graphviz writes the node id as the title). */
function svgNodes(svg: string): Map<string, string> {
  const nodes = new Map<string, string>();
  for (const match of svg.matchAll(
    /<g id="node\d+" class="node">\s*<title>(.*?)<\/title>([\s\S]*?)<\/g>/g,
  )) {
    nodes.set(unescapeSvg(match[1]!), unescapeSvg(match[2]!));
  }
  return nodes;
}

describe('renderJson', () => {
  it('gives identical bytes for identical specs, whatever the key order', () => {
    const shuffled = JSON.parse(JSON.stringify(spec)) as GraphSpec;
    const reversed = Object.fromEntries(Object.entries(shuffled).reverse()) as GraphSpec;
    reversed.jobs = reversed.jobs.map(
      (j) => Object.fromEntries(Object.entries(j).reverse()) as JobSpec,
    );
    const json = renderJson(spec);
    expect(renderJson(reversed)).toBe(json);
    expect(json.endsWith('}\n')).toBe(true);
    expect(json.split('\n')[1]).toBe('  "defines": {');
    expect(JSON.parse(json)).toEqual(spec);
  });

  it('leaves out undefined members as JSON does', () => {
    const withUndefined = { ...graph(job('a')), extra: undefined } as unknown as GraphSpec;
    expect(renderJson(withUndefined)).toBe(renderJson(graph(job('a'))));
  });
});

describe('renderDot', () => {
  it('draws every job and edge, with conditions, kinds and quoting', () => {
    const dot = renderDot(spec);
    expect(dot).toMatch(/^digraph "per-checkin" \{\n/);
    expect(dot.endsWith('}\n')).toBe(true);
    const nodes = nodeLines(dot);
    expect(nodes.size).toBe(spec.jobs.length);
    expect(nodes.get('"build"')).toBe('  "build" [label="build\\ncommand", shape=box];');
    expect(nodes.get('"say \\"hi\\""')).toContain('label="say \\"hi\\"\\nnotify", shape=note');
    expect(nodes.get('"back\\\\slash"')).toContain('shape=hexagon');
    expect(nodes.get('"qa-signoff"')).toContain('shape=octagon');
    expect(nodes.get('"heavy"')).toContain('shape=cds');
    expect(nodes.get('"tests-done"')).toContain('shape=ellipse');
    expect(dot).toContain('  "build" -> "test/1";\n');
    expect(dot).toContain('  "test/1" -> "tests-done" [label="finished"];\n');
    expect(dot).toContain('  "test/1" -> "say \\"hi\\"" [label="failure, exception"];\n');
    expect(dot).toContain('  "build" -> "back\\\\slash" [label="any"];\n');
  });

  it('draws inactive jobs dashed and grey, filtered ones dotted', () => {
    const nodes = nodeLines(renderDot(spec));
    for (const id of ['"pgo"', '"pgo-test"', '"pgo-docs"']) {
      expect(nodes.get(id)).toMatch(/style="dashed", color=grey55, fontcolor=grey55/);
    }
    expect(nodes.get('"pgo-test"')).toContain('\\ninactive"');
    expect(nodes.get('"lint.v2"')).toContain('style="dotted"');
    expect(nodes.get('"lint.v2"')).toContain('\\nfiltered"');
    expect(nodes.get('"build"')).not.toMatch(/dashed|dotted/);
    expect(renderDot(spec)).toContain('  "pgo" -> "pgo-test" [style=dashed, color=grey55];\n');
  });

  it('renders with Graphviz, inactive nodes dashed in the SVG', async () => {
    const viz = await instance();
    const result = viz.render(renderDot(spec), { format: 'svg' });
    expect(result.errors).toEqual([]);
    expect(result.status).toBe('success');
    const nodes = svgNodes(result.output!);
    expect(nodes.size).toBe(spec.jobs.length);
    expect(nodes.get('pgo')).toContain('stroke-dasharray="5,2"');
    expect(nodes.get('pgo-test')).toContain('stroke-dasharray="5,2"');
    expect(nodes.get('lint.v2')).toContain('stroke-dasharray="1,5"');
    expect(nodes.get('build')).not.toContain('stroke-dasharray');
    // Quoted labels come out as written.
    expect(nodes.get('say "hi"')).toContain('>say "hi"</text>');
    expect(nodes.get('back\\\\slash')).toContain('>back\\slash</text>');
  });

  it('fills nodes by state and result when given a state', async () => {
    let state: GraphState = initialState(spec);
    const events: GraphEvent[] = [
      { type: 'started', job: 'build' },
      { type: 'finished', job: 'build', result: 'success' },
      { type: 'started', job: 'test/1' },
      { type: 'timeout', job: 'unit', timeout: 'request' },
      { type: 'retrigger', job: 'lint.v2' },
    ];
    for (const event of events) state = applyEvent(spec, state, event).state;
    const dot = renderDot(spec, state);
    const nodes = nodeLines(dot);
    expect(nodes.get('"build"')).toContain('label="build\\ncommand\\nsuccess"');
    expect(nodes.get('"build"')).toContain('fillcolor=palegreen, style="filled"');
    expect(nodes.get('"test/1"')).toContain('fillcolor=lightskyblue');
    expect(nodes.get('"test/2"')).toContain('fillcolor=lightyellow');
    expect(nodes.get('"tests-done"')).toContain('fillcolor=white');
    expect(nodes.get('"unit"')).toContain('timed-out (request-timeout)');
    expect(nodes.get('"unit"')).toContain('fillcolor=orange');
    expect(nodes.get('"forced"')).toContain('fillcolor=salmon');
    // Retriggered: it runs despite the filter, so it is drawn as what it is now.
    expect(nodes.get('"lint.v2"')).not.toContain('dotted');
    expect(nodes.get('"pgo"')).toContain('style="dashed"');
    expect(nodes.get('"pgo"')).not.toContain('fillcolor');
    const filteredState = initialState(spec);
    expect(nodeLines(renderDot(spec, filteredState)).get('"lint.v2"')).toContain(
      'style="dotted,filled"',
    );
    const viz = await instance();
    expect(viz.render(dot, { format: 'svg' }).errors).toEqual([]);
  });

  it('colours every result distinctly', () => {
    const colours = new Set<string>();
    for (const result of jobResults) {
      const one = graph(job('a', { kind: 'dummy', dummy: { result } }));
      const line = nodeLines(renderDot(one, initialState(one))).get('"a"')!;
      colours.add(/fillcolor=(\w+)/.exec(line)![1]!);
    }
    expect(colours.size).toBe(jobResults.length);
  });

  it('draws a malformed spec too, so a cycle can be looked at', async () => {
    const cyclic = graph(job('a', { needs: ['b'] }), job('b', { needs: ['a'] }));
    const dot = renderDot(cyclic);
    expect(dot).toContain('"a" -> "b"');
    expect(dot).toContain('"b" -> "a"');
    expect((await instance()).render(dot).errors).toEqual([]);
  });

  it('escapes newlines, so a label cannot end a string early', () => {
    const odd = graph(job('two\nlines'), job('ends-with\\', { needs: ['two\nlines'] }));
    const dot = renderDot(odd);
    expect(dot).toContain('"two\\nlines" -> "ends-with\\\\"');
    expect(dot.split('\n').filter((l) => l.startsWith('  "')).length).toBe(3);
  });
});

describe('renderText', () => {
  it('lists jobs in topological order with their settings and markers', () => {
    expect(renderText(spec)).toBe(
      [
        'per-checkin: pull_request on feature/x at 0123456789ab, 14 jobs',
        '  build       command     requires linux, node',
        '  back\\slash  timer       needs build (any)',
        '  forced      dummy       forces failure',
        '  lint.v2     command     (filtered)',
        '  pgo         command     needs build  (inactive)',
        '  pgo-docs    command     (inactive)',
        '  pgo-test    command     needs pgo  (inactive)',
        '  test/1      command     requires linux  chunk 1 of 2  needs build',
        '  say "hi"    notify      needs test/1 (failure, exception)',
        '  test/2      command     requires linux  chunk 2 of 2  needs build',
        '  tests-done  dummy       needs test/1 (finished), test/2 (finished)',
        '  qa-signoff  breakpoint  needs tests-done',
        '  heavy       trigger     needs qa-signoff',
        '  unit        command     chunks 1–8  needs build',
        '',
      ].join('\n'),
    );
  });

  it('lists a malformed spec in spec order under its problems', () => {
    const cyclic = graph(job('a', { needs: ['b'] }), job('b', { needs: ['a'] }));
    expect(renderText(cyclic)).toBe(
      [
        'per-checkin: pull_request on feature/x at 0123456789ab, 2 jobs',
        '  problem: a: cycle: a → b → a',
        '  a  command  needs b',
        '  b  command  needs a',
        '',
      ].join('\n'),
    );
    const broken = { ...graph(job('x', { needs: ['ghost'] })), graph: 'g' };
    expect(renderText(broken)).toContain('  problem: x: depends on unknown job "ghost"\n');
    expect(renderText(graph())).toBe(
      'per-checkin: pull_request on feature/x at 0123456789ab, 0 jobs\n',
    );
    expect(renderText(graph(job('solo')))).toContain(', 1 job\n');
  });

  it('does not hide programming errors behind the fallback', () => {
    const notASpec = { ...graph(), jobs: null } as unknown as GraphSpec;
    expect(() => renderText(notASpec)).toThrow(TypeError);
  });
});
