import { describe, expect, it } from 'vitest';
import {
  COMMANDS,
  PATTERN_LIMITS,
  commandHelp,
  matchJobs,
  parseCommands,
} from '../src/github/commands.js';

describe('comment commands', () => {
  it('reads every command on a line of its own, in any case, several per comment', () => {
    const body = [
      'Thanks! Let us try again.',
      '/tower retrigger build test/*',
      '  /TOWER Retry',
      '/tower run pgo',
      '/Tower approve qa-signoff release-gate',
      '/tower cancel',
      '/tower ok-to-test',
      '/tower help',
      '/tower',
    ].join('\r\n');
    expect(parseCommands(body)).toEqual({
      commands: [
        { name: 'retrigger', jobs: ['build', 'test/*'] },
        { name: 'retry' },
        { name: 'run', jobs: ['pgo'] },
        { name: 'approve', jobs: ['qa-signoff', 'release-gate'] },
        { name: 'cancel' },
        { name: 'ok-to-test' },
        { name: 'help' },
        { name: 'help' },
      ],
      problems: [],
    });
  });

  it('ignores mentions inside a line, quoted lines, code blocks and look-alikes', () => {
    const body = [
      'Please run /tower retry when you can',
      '> /tower retry',
      '```',
      '/tower cancel',
      '```',
      '~~~sh',
      '/tower cancel',
      '~~~',
      '/towering retry',
      '    /tower retry',
      '/tower retry',
    ].join('\n');
    expect(parseCommands(body)).toEqual({ commands: [{ name: 'retry' }], problems: [] });
  });

  it('says what is wrong with an unknown command or a missing or extra argument', () => {
    expect(
      parseCommands(
        [
          '/tower rebuild everything',
          '/tower retrigger',
          '/tower retry now',
          '/tower run <script>',
        ].join('\n'),
      ),
    ).toEqual({
      commands: [],
      problems: [
        { line: '/tower rebuild everything', message: 'Tower has no command `rebuild`' },
        {
          line: '/tower retrigger',
          message:
            '`/tower retrigger` needs the jobs to run again: labels or globs such as `test/*`',
        },
        { line: '/tower retry now', message: '`/tower retry` takes nothing after it' },
        {
          line: '/tower run <script>',
          message: '`<script>` is not a job label or a glob of labels',
        },
      ],
    });
  });

  it('reads the landing commands, their options, and says what is wrong with them', () => {
    expect(
      parseCommands(
        [
          '/tower land',
          '/tower land p=5 single',
          '/tower land P=-100',
          '/tower unland',
          '/tower queue Pause',
          '/tower queue resume',
          '/tower queue drain',
          '/tower land p=101',
          '/tower land now',
          '/tower queue',
          '/tower queue pause now',
          '/tower unland please',
        ].join('\n'),
      ),
    ).toEqual({
      commands: [
        { name: 'land', priority: 0, single: false },
        { name: 'land', priority: 5, single: true },
        { name: 'land', priority: -100, single: false },
        { name: 'unland' },
        { name: 'queue', action: 'pause' },
        { name: 'queue', action: 'resume' },
        { name: 'queue', action: 'drain' },
      ],
      problems: [
        {
          line: '/tower land p=101',
          message:
            "`p=101` is not an option of `/tower land`: use `p=N` (-100 to 100), `single` or the head commit's sha",
        },
        {
          line: '/tower land now',
          message:
            "`now` is not an option of `/tower land`: use `p=N` (-100 to 100), `single` or the head commit's sha",
        },
        {
          line: '/tower queue',
          message: '`/tower queue` needs one of `pause`, `resume` or `drain`',
        },
        {
          line: '/tower queue pause now',
          message: '`/tower queue` needs one of `pause`, `resume` or `drain`',
        },
        { line: '/tower unland please', message: '`/tower unland` takes nothing after it' },
      ],
    });
  });

  it('reads the head commit a landing or an ok-to-test names', () => {
    expect(
      parseCommands(
        [
          '/tower land ABCDEF1 single',
          '/tower ok-to-test 0123456789abcdef0123456789abcdef01234567',
          '/tower ok-to-test abc',
          '/tower ok-to-test abcdef1 now',
        ].join('\n'),
      ),
    ).toEqual({
      commands: [
        { name: 'land', priority: 0, single: true, sha: 'abcdef1' },
        { name: 'ok-to-test', sha: '0123456789abcdef0123456789abcdef01234567' },
      ],
      problems: [
        {
          line: '/tower ok-to-test abc',
          message:
            '`/tower ok-to-test` takes nothing after it, or the head commit it is for (7 to 40 hex digits)',
        },
        {
          line: '/tower ok-to-test abcdef1 now',
          message:
            '`/tower ok-to-test` takes nothing after it, or the head commit it is for (7 to 40 hex digits)',
        },
      ],
    });
  });

  it('bounds the patterns a comment may ask to match, before anything is matched', () => {
    const many = Array.from({ length: PATTERN_LIMITS.patterns + 1 }, (_, i) => `job-${i}`);
    const body = [
      `/tower approve ${'*?'.repeat(12)}`,
      `/tower retrigger ${'a'.repeat(101)}`,
      `/tower run ${many.join(' ')}`,
      '/tower retrigger [abc',
      ...Array.from({ length: PATTERN_LIMITS.commands + 1 }, () => '/tower retry'),
    ].join('\n');
    const { commands, problems } = parseCommands(body);
    expect(commands).toHaveLength(PATTERN_LIMITS.commands);
    expect(problems.map((p) => p.message)).toEqual([
      '`*?*?*?*?*?*?*?*?*?*?*?*?` is too complex: a pattern has at most 10 wildcards (`*` and `?`), and it has 24',
      `\`${'a'.repeat(30)}…\` is too long: a pattern has at most 100 characters`,
      '`/tower run` takes at most 20 jobs or globs',
      '`[abc` is not a valid glob',
      'a comment holds at most 10 commands: this one was not carried out',
    ]);
  });

  it('matches labels by glob within a budget of jobs × patterns', () => {
    const labels = ['build', 'test/1', 'test/2', 'lint', 'docs'];
    expect(matchJobs(labels, ['test/*', '{lint,docs}', 'build', 'nothing'])).toEqual({
      kind: 'matched',
      labels: new Set(['test/1', 'test/2', 'lint', 'docs', 'build']),
    });
    expect(matchJobs(labels, ['!build'])).toEqual({
      kind: 'matched',
      labels: new Set(['test/1', 'test/2', 'lint', 'docs']),
    });
    // A pull request's long labels make each star costly: refused before any match is tried.
    const long = Array.from({ length: 50 }, (_, i) => `${'x'.repeat(200)}-${i}/1`);
    expect(matchJobs(long, ['*?*?*?*?*?'])).toEqual({
      kind: 'too-complex',
      message:
        'the patterns are too complex to match against 50 jobs: use fewer `*`, or name the jobs',
    });
    expect(matchJobs(['a'.repeat(5000)], ['*a*a*a*'])).toMatchObject({ kind: 'too-complex' });
    expect(matchJobs(['x'], ['*x*'])).toMatchObject({ kind: 'matched' });
    expect(matchJobs(['just-one'], ['*-*-*-*-*'])).toEqual({ kind: 'matched', labels: new Set() });
  });

  it('documents every command with who may use it', () => {
    const help = commandHelp();
    for (const spec of Object.values(COMMANDS)) {
      expect(help).toContain(`| \`${spec.usage}\` | ${spec.summary} | ${spec.who} |`);
    }
  });
});
