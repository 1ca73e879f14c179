import { describe, expect, it } from 'vitest';
import { COMMANDS, commandHelp, parseCommands } from '../src/github/commands.js';

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
          message: '`p=101` is not an option of `/tower land`: use `p=N` (-100 to 100) or `single`',
        },
        {
          line: '/tower land now',
          message: '`now` is not an option of `/tower land`: use `p=N` (-100 to 100) or `single`',
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

  it('documents every command with who may use it', () => {
    const help = commandHelp();
    for (const spec of Object.values(COMMANDS)) {
      expect(help).toContain(`| \`${spec.usage}\` | ${spec.summary} | ${spec.who} |`);
    }
  });
});
