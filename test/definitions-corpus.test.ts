/**
 * The corpus of broken definitions: each case under
 * test/fixtures/definitions/broken/ must report its mistake at exactly the
 * line and column written here, with a message that says what is wrong.
 * The valid cases must check clean and satisfy the JSON Schema.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  checkDefinitions,
  definitionsJsonSchema,
  formatDiagnostic,
  generateGraphs,
  graphTestsJsonSchema,
  loadDefinitions,
  runGraphTests,
  type Diagnostic,
} from '../src/definitions/index.js';
import { caseNames, readCase } from './definitions-fixtures.js';

type Expectation = {
  /** `file:line:col`, the file relative to the repository. */
  at: string;
  /** A part of the message. */
  says: string;
  severity?: 'error' | 'warning';
  /** The JSON Schema rejects it too (a mistake of shape, not of meaning). */
  schema?: boolean;
};

const f = (name: string) => `.tower/${name}.yml`;

/** Case name → where its mistake is reported and what the message says. */
const corpus: Record<string, Expectation> = {
  // YAML syntax
  'yaml-unclosed-flow.yml': { at: `${f('yaml-unclosed-flow')}:5:48`, says: 'end with a ]' },
  'yaml-duplicate-key.yml': {
    at: `${f('yaml-duplicate-key')}:6:7`,
    says: 'Map keys must be unique',
  },
  'yaml-tab-indent.yml': { at: `${f('yaml-tab-indent')}:3:1`, says: 'Tabs are not allowed' },
  'yaml-unknown-anchor.yml': {
    at: `${f('yaml-unknown-anchor')}:3:9`,
    says: 'unknown anchor "common"',
  },
  'yaml-alias-bomb.yml': { at: `${f('yaml-alias-bomb')}:1:1`, says: 'Excessive alias count' },
  'yaml-unknown-tag.yml': {
    at: `${f('yaml-unknown-tag')}:5:44`,
    says: 'Unresolved tag: !shell',
    severity: 'warning',
  },
  'proto-key.yml': { at: `${f('proto-key')}:8:16`, says: '"__proto__" cannot be used as a key' },
  'not-a-mapping.yml': {
    at: `${f('not-a-mapping')}:1:1`,
    says: 'expected a mapping that starts with "version: 1"',
  },
  'empty-file.yml': { at: `${f('empty-file')}:1:1`, says: 'expected a mapping' },
  // Versions
  'version-missing.yml': {
    at: `${f('version-missing')}:1:1`,
    says: 'missing "version: 1"',
    schema: true,
  },
  'version-unsupported.yml': {
    at: `${f('version-unsupported')}:1:10`,
    says: 'unsupported version 2: this Tower reads version 1',
    schema: true,
  },
  'version-string.yml': {
    at: `${f('version-string')}:1:10`,
    says: 'unsupported version "1"',
    schema: true,
  },
  // Unknown keys, with suggestions among the keys valid there
  'unknown-top-level-key.yml': {
    at: `${f('unknown-top-level-key')}:2:1`,
    says: 'unknown key "graph"; did you mean "graphs"?',
    schema: true,
  },
  'unknown-job-key.yml': {
    at: `${f('unknown-job-key')}:5:16`,
    says: 'unknown key "kidn"; did you mean "kind"?',
    schema: true,
  },
  'unknown-job-key-needs.yml': {
    at: `${f('unknown-job-key-needs')}:9:9`,
    says: 'unknown key "nedds"; did you mean "needs"?',
    schema: true,
  },
  'unknown-scheduler-key.yml': {
    at: `${f('unknown-scheduler-key')}:3:17`,
    says: 'unknown key "branch"; did you mean "branches"?',
    schema: true,
  },
  'unknown-graph-key.yml': {
    at: `${f('unknown-graph-key')}:4:5`,
    says: 'unknown key "includes"; did you mean "include"?',
    schema: true,
  },
  'unknown-include-key.yml': {
    at: `${f('unknown-include-key')}:7:23`,
    says: 'unknown key "activ"; did you mean "active"?',
    schema: true,
  },
  'unknown-chunks-key.yml': {
    at: `${f('unknown-chunks-key')}:5:72`,
    says: 'unknown key "maxx"; did you mean "max"?',
    schema: true,
  },
  'scheduler-cron-with-branches.yml': {
    at: `${f('scheduler-cron-with-branches')}:3:51`,
    says: 'unknown key "branches"; did you mean "branch"?',
    schema: true,
  },
  'scheduler-push-with-schedule.yml': {
    at: `${f('scheduler-push-with-schedule')}:3:17`,
    says: 'unknown key "schedule"; expected one of branches, description, graph, on, when',
    schema: true,
  },
  'template-uses-template.yml': {
    at: `${f('template-uses-template')}:4:11`,
    says: 'a template cannot use another template',
    schema: true,
  },
  'branch-file-with-schedulers': {
    at: '.tower/branches/main.yml:4:1',
    says: 'unknown key "schedulers"; expected one of branches, version',
  },
  // Wrong types and values
  'wrong-type-requires.yml': {
    at: `${f('wrong-type-requires')}:5:26`,
    says: 'expected a list, got "linux"',
    schema: true,
  },
  'wrong-type-retries.yml': {
    at: `${f('wrong-type-retries')}:5:59`,
    says: 'must be at most 10',
    schema: true,
  },
  'wrong-type-env-value.yml': {
    at: `${f('wrong-type-env-value')}:9:15`,
    says: 'environment values are strings: quote it, as in "true"',
    schema: true,
  },
  'wrong-type-needs.yml': {
    at: `${f('wrong-type-needs')}:6:61`,
    says: 'must be a list of job labels, or a mapping from job label to condition',
    schema: true,
  },
  'wrong-type-chunks-zero.yml': {
    at: `${f('wrong-type-chunks-zero')}:5:62`,
    says: 'must be at least 1',
    schema: true,
  },
  'wrong-type-priority.yml': {
    at: `${f('wrong-type-priority')}:5:60`,
    says: 'expected a number, got "high"',
    schema: true,
  },
  'wrong-type-command-empty.yml': {
    at: `${f('wrong-type-command-empty')}:7:9`,
    says: 'expected a string, got nothing',
    schema: true,
  },
  'wrong-type-graph-jobs.yml': {
    at: `${f('wrong-type-graph-jobs')}:4:11`,
    says: 'expected a mapping, got a list',
    schema: true,
  },
  'wrong-type-graph.yml': {
    at: `${f('wrong-type-graph')}:3:7`,
    says: 'expected a mapping, got 3',
    schema: true,
  },
  'wrong-type-include.yml': {
    at: `${f('wrong-type-include')}:6:14`,
    says: 'expected a list, got "pgo"',
    schema: true,
  },
  'wrong-type-branch-defines.yml': {
    at: `${f('wrong-type-branch-defines')}:3:9`,
    says: 'expected a mapping, got true',
    schema: true,
  },
  'define-value-list.yml': {
    at: `${f('define-value-list')}:3:25`,
    says: 'a define is a string, a number or true/false',
    schema: true,
  },
  'kind-long-value.yml': {
    at: `${f('kind-long-value')}:5:22`,
    says: '"a-kind-that-does-not-exist-anywhere-a..." is not one of command',
    schema: true,
  },
  'requires-empty.yml': {
    at: `${f('requires-empty')}:5:26`,
    says: 'requires at least one minion tag',
    schema: true,
  },
  'kind-unknown.yml': {
    at: `${f('kind-unknown')}:5:22`,
    says: '"comand" is not one of command, dummy, breakpoint, timer, notify, trigger; did you mean "command"?',
    schema: true,
  },
  'dummy-bad-result.yml': {
    at: `${f('dummy-bad-result')}:5:36`,
    says: '"passed" is not one of success',
    schema: true,
  },
  'on-request-timeout-value.yml': {
    at: `${f('on-request-timeout-value')}:5:98`,
    says: '"skip" is not one of timed-out, skipped, failure, success',
    schema: true,
  },
  'approver-bad.yml': {
    at: `${f('approver-bad')}:5:49`,
    says: 'an approver is a GitHub login or team:slug',
    schema: true,
  },
  'timer-at-no-zone.yml': {
    at: `${f('timer-at-no-zone')}:5:32`,
    says: 'ISO 8601 timestamp with a time zone',
    schema: true,
  },
  'webhook-not-url.yml': {
    at: `${f('webhook-not-url')}:5:38`,
    says: 'must be an http:// or https:// URL',
    schema: true,
  },
  'env-bad-name.yml': {
    at: `${f('env-bad-name')}:9:11`,
    says: 'an environment variable name',
    schema: true,
  },
  // Names
  'bad-job-label.yml': {
    at: `${f('bad-job-label')}:5:7`,
    says: '"/" is reserved for chunks',
    schema: true,
  },
  'bad-define-name.yml': {
    at: `${f('bad-define-name')}:4:5`,
    says: 'a define name must start with a letter',
  },
  'unknown-template.yml': {
    at: `${f('unknown-template')}:7:20`,
    says: 'unknown template "unti"; did you mean "unit"?',
  },
  'template-in-other-file-unknown': {
    at: '.tower/b.yml:5:20',
    says: 'unknown template "units"; did you mean "unit"?',
  },
  'bad-graph-name.yml': {
    at: `${f('bad-graph-name')}:4:3`,
    says: 'a graph name must start with a letter',
    schema: true,
  },
  'unknown-graph-in-scheduler.yml': {
    at: `${f('unknown-graph-in-scheduler')}:3:24`,
    says: 'unknown graph "per-checkin"; did you mean "per-chekin"?',
  },
  'unknown-graph-in-include.yml': {
    at: `${f('unknown-graph-in-include')}:4:15`,
    says: 'unknown graph "nightyl"; did you mean "nightly"?',
  },
  'duplicate-template': {
    at: '.tower/b.yml:3:3',
    says: 'template "unit" is already defined at .tower/a.yml:3:3',
  },
  'duplicate-graph': {
    at: '.tower/b.yml:3:3',
    says: 'graph "ci" is already defined at .tower/a.yml:3:3',
  },
  'duplicate-define': {
    at: '.tower/ci.yml:3:18',
    says: '"pgo" for "release/*" is already set at .tower/branches/release.yml:4:5',
  },
  // Dependencies
  'unknown-dependency.yml': {
    at: `${f('unknown-dependency')}:6:62`,
    says: 'unknown job "biuld" in graph "ci"; did you mean "build"?',
  },
  'unknown-dependency-map.yml': {
    at: `${f('unknown-dependency-map')}:11:11`,
    says: 'unknown job "lint" in graph "ci"',
  },
  'cycle-two-jobs.yml': {
    at: `${f('cycle-two-jobs')}:6:62`,
    says: 'dependency cycle: build → test → build',
  },
  'cycle-three-jobs.yml': {
    at: `${f('cycle-three-jobs')}:6:33`,
    says: 'dependency cycle: a → b → c → a',
  },
  'needs-itself.yml': { at: `${f('needs-itself')}:5:58`, says: 'job "build" needs itself' },
  'needs-listed-twice.yml': {
    at: `${f('needs-listed-twice')}:6:69`,
    says: '"build" is listed twice',
  },
  'duplicate-label-across-includes.yml': {
    at: `${f('duplicate-label-across-includes')}:9:7`,
    says: 'job "build" is already defined in graph "ci" at .tower/duplicate-label-across-includes.yml:6:7',
  },
  'include-loop.yml': { at: `${f('include-loop')}:8:15`, says: 'include loop: a → b → c → a' },
  'include-self.yml': { at: `${f('include-self')}:4:15`, says: 'include loop: ci → ci' },
  // Globs
  'glob-absolute.yml': { at: `${f('glob-absolute')}:5:64`, says: 'is absolute' },
  'glob-parent.yml': { at: `${f('glob-parent')}:5:62`, says: 'leaves the repository with ".."' },
  'glob-unclosed-bracket.yml': {
    at: `${f('glob-unclosed-bracket')}:5:64`,
    says: 'is not a valid glob: Missing closing: "]"',
  },
  'glob-empty.yml': { at: `${f('glob-empty')}:5:72`, says: 'a pattern must not be empty' },
  'glob-never-matches.yml': { at: `${f('glob-never-matches')}:5:64`, says: 'can never match' },
  'glob-bad-branch.yml': {
    at: `${f('glob-bad-branch')}:3:34`,
    says: '"release/{1,2" is not a valid glob',
  },
  'glob-empty-branch.yml': {
    at: `${f('glob-empty-branch')}:3:34`,
    says: 'a branch pattern must not be empty',
  },
  'glob-bad-branch-section.yml': {
    at: `${f('glob-bad-branch-section')}:3:3`,
    says: '"release/(x" is not a valid glob',
  },
  // Durations
  'duration-bad-unit.yml': {
    at: `${f('duration-bad-unit')}:5:63`,
    says: 'must be a duration such as 90s',
    schema: true,
  },
  'duration-zero.yml': { at: `${f('duration-zero')}:5:64`, says: 'above zero' },
  'duration-fraction.yml': {
    at: `${f('duration-fraction')}:5:63`,
    says: 'must be a duration',
    schema: true,
  },
  'duration-too-long.yml': { at: `${f('duration-too-long')}:5:63`, says: 'must be at most 365d' },
  'duration-wrong-order.yml': {
    at: `${f('duration-wrong-order')}:5:63`,
    says: 'must be a duration',
    schema: true,
  },
  // Conditions that can never hold
  'condition-empty-list.yml': {
    at: `${f('condition-empty-list')}:6:64`,
    says: 'an empty list of results can never be satisfied',
    schema: true,
  },
  'condition-forced-result.yml': {
    at: `${f('condition-forced-result')}:6:66`,
    says: 'this condition can never hold: "gate" always ends failure',
  },
  'condition-unknown-keyword.yml': {
    at: `${f('condition-unknown-keyword')}:6:44`,
    says: 'did you mean "finished"?',
    schema: true,
  },
  'condition-unknown-result.yml': {
    at: `${f('condition-unknown-result')}:6:45`,
    says: '"sucess" is not one of success',
    schema: true,
  },
  // Kinds
  'kind-key-not-valid.yml': {
    at: `${f('kind-key-not-valid')}:5:29`,
    says: '"command" does not apply to dummy jobs',
  },
  'kind-key-from-template.yml': {
    at: `${f('kind-key-from-template')}:7:22`,
    says: 'template "unit" sets "command", which does not apply to dummy jobs',
  },
  'template-kind-key.yml': {
    at: `${f('template-kind-key')}:6:5`,
    says: '"retries" does not apply to breakpoint jobs (it applies to command jobs)',
  },
  'missing-command.yml': {
    at: `${f('missing-command')}:5:7`,
    says: 'command job "build" needs a "command"',
  },
  'missing-requires.yml': {
    at: `${f('missing-requires')}:5:7`,
    says: 'needs "requires": the minion tags it runs on',
  },
  'breakpoint-no-approvers.yml': {
    at: `${f('breakpoint-no-approvers')}:5:7`,
    says: 'breakpoint job "sign-off" needs "approvers"',
  },
  'timer-both.yml': { at: `${f('timer-both')}:5:7`, says: 'has both "delay" and "at"' },
  'timer-neither.yml': {
    at: `${f('timer-neither')}:5:7`,
    says: 'timer job "wait" needs "delay" or "at"',
  },
  'notify-nothing.yml': {
    at: `${f('notify-nothing')}:5:7`,
    says: 'needs a "comment", a "webhook" or both',
  },
  'trigger-no-cluster.yml': {
    at: `${f('trigger-no-cluster')}:5:7`,
    says: 'trigger job "remote" needs a "cluster"',
  },
  'on-request-timeout-alone.yml': {
    at: `${f('on-request-timeout-alone')}:5:57`,
    says: 'on_request_timeout has no effect without request_timeout',
    severity: 'warning',
  },
  // Substitution
  'substitution-unknown-name.yml': {
    at: `${f('substitution-unknown-name')}:5:54`,
    says: 'unknown name "shaa" in ${{ }}; did you mean "sha"?',
  },
  'substitution-expression.yml': {
    at: `${f('substitution-expression')}:9:38`,
    says: 'unknown name "github.run_id"',
  },
  'substitution-unclosed.yml': { at: `${f('substitution-unclosed')}:5:54`, says: 'unclosed "${{"' },
  'substitution-chunk-without-chunks.yml': {
    at: `${f('substitution-chunk-without-chunks')}:5:60`,
    says: '${{ chunk }} needs chunks, and job "test" has none',
  },
  'substitution-unknown-define.yml': {
    at: `${f('substitution-unknown-define')}:11:21`,
    says: 'unknown define "nigthly": no branch section sets it; did you mean "nightly"?',
  },
  'substitution-in-comment.yml': {
    at: `${f('substitution-in-comment')}:5:47`,
    says: 'unknown name "event.actor" in ${{ }}; did you mean "event.author"?',
  },
  // Defines named by when and active
  'when-unknown-define.yml': {
    at: `${f('when-unknown-define')}:5:68`,
    says: 'no branch section sets "nigthly", so it is always false; did you mean "nightly"?',
    severity: 'warning',
  },
  'active-unknown-define.yml': {
    at: `${f('active-unknown-define')}:5:31`,
    says: 'no branch section sets "pgo"',
    severity: 'warning',
  },
  'when-bad-syntax.yml': {
    at: `${f('when-bad-syntax')}:3:34`,
    says: 'must name a branch define, or "!name"',
    schema: true,
  },
  // Chunks
  'chunks-min-above-max.yml': {
    at: `${f('chunks-min-above-max')}:5:62`,
    says: 'chunks min (6) is greater than max (2)',
  },
  'chunks-too-many.yml': {
    at: `${f('chunks-too-many')}:5:62`,
    says: 'must be at most 1000',
    schema: true,
  },
  // Schedulers
  'cron-bad-hour.yml': { at: `${f('cron-bad-hour')}:3:27`, says: 'hour "25": 25 is outside 0-23' },
  'cron-four-fields.yml': {
    at: `${f('cron-four-fields')}:3:27`,
    says: 'a schedule has five fields',
  },
  'cron-missing-branch.yml': {
    at: `${f('cron-missing-branch')}:3:5`,
    says: 'missing required key "branch"',
    schema: true,
  },
  'scheduler-unknown-event.yml': {
    at: `${f('scheduler-unknown-event')}:3:11`,
    says: '"pus" is not one of push, pull_request, land, trigger, api, cron; did you mean "push"?',
    schema: true,
  },
  'scheduler-missing-on.yml': {
    at: `${f('scheduler-missing-on')}:3:5`,
    says: 'missing required key "on"',
    schema: true,
  },
  // Files
  'ignored-folder': {
    at: '.tower/branch/main.yml:1:1',
    says: 'ignored: Tower reads .tower/*.yml, .tower/branches/*.yml and .tower/tests/*.yml',
    severity: 'warning',
  },
  // Graph assertion files
  'tests-unknown-key': {
    at: '.tower/tests/ci.yml:6:5',
    says: 'unknown key "prsent"; did you mean "present"?',
    schema: true,
  },
  'tests-not-a-list': {
    at: '.tower/tests/ci.yml:3:3',
    says: 'expected a list, got a mapping',
    schema: true,
  },
  'tests-empty-name': { at: '.tower/tests/ci.yml:3:13', says: 'must not be empty', schema: true },
  'tests-bad-event': { at: '.tower/tests/ci.yml:3:33', says: 'did you mean "push"?', schema: true },
};

const where = (d: Diagnostic) => `${d.file}:${d.line}:${d.column}`;

describe('the corpus of broken definitions', () => {
  it('has an expectation for every case, and at least 40 cases', () => {
    expect(caseNames('broken')).toEqual(Object.keys(corpus).sort());
    expect(Object.keys(corpus).length).toBeGreaterThanOrEqual(40);
  });

  it.each(Object.entries(corpus))('%s', (name, expected) => {
    const diagnostics = checkDefinitions(readCase('broken', name));
    const severity = expected.severity ?? 'error';
    const match = diagnostics.find(
      (d) =>
        where(d) === expected.at && d.severity === severity && d.message.includes(expected.says),
    );
    expect(match, `got:\n${diagnostics.map(formatDiagnostic).join('\n')}`).toBeDefined();
    // Diagnostics are well formed: 1-based positions, a path where the node has one.
    for (const d of diagnostics) {
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.column).toBeGreaterThanOrEqual(1);
    }
  });

  it('generates no graph from definitions with an error', () => {
    for (const [name, expected] of Object.entries(corpus)) {
      if (expected.severity === 'warning' || name.startsWith('tests-')) continue;
      const files = readCase('broken', name);
      expect(
        generateGraphs(files, { type: 'push', branch: 'main', sha: 'abc' }).specs,
        name,
      ).toEqual([]);
      const loaded = loadDefinitions(files);
      const built =
        loaded.definitions === undefined ||
        checkDefinitions(files).some((d) => d.severity === 'error');
      expect(built, name).toBe(true);
    }
  });
});

function validator(schema: object) {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats.default(ajv);
  return ajv.compile(schema);
}

describe('the JSON Schema', () => {
  const definitions = validator(definitionsJsonSchema());
  const graphTests = validator(graphTestsJsonSchema());
  const validate = (path: string) => (path.startsWith('.tower/tests/') ? graphTests : definitions);

  it.each(caseNames('valid'))('accepts the valid case %s, which also checks clean', (name) => {
    const files = readCase('valid', name);
    expect(checkDefinitions(files).map(formatDiagnostic)).toEqual([]);
    for (const file of files) {
      const check = validate(file.path);
      expect(check(parse(file.content)), `${file.path}: ${JSON.stringify(check.errors)}`).toBe(
        true,
      );
    }
  });

  it('runs the graph tests of the valid cases, which pass', () => {
    const { results, diagnostics } = runGraphTests(readCase('valid', 'split-files'));
    expect(diagnostics).toEqual([]);
    expect(results.length).toBe(5);
    expect(results.filter((r) => !r.passed)).toEqual([]);
  });

  it.each(Object.entries(corpus).filter(([, e]) => e.schema))(
    'rejects the mistake of shape in %s',
    (name) => {
      const files = readCase('broken', name);
      expect(files.some((file) => !validate(file.path)(parse(file.content)))).toBe(true);
    },
  );
});
