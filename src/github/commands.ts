/**
 * `/tower` comment commands (docs/commands.md), parsed from a comment body.
 * Pure. A command is a line of its own that starts with `/tower`, in any
 * case; a comment may hold several. Lines in fenced code blocks and quoted
 * lines (`> /tower retry`, as a reply quotes) are not commands, so quoting
 * a command never runs it again.
 */

export type Command =
  | { name: 'retrigger'; jobs: string[] }
  | { name: 'retry' }
  | { name: 'cancel' }
  | { name: 'run'; jobs: string[] }
  | { name: 'approve'; jobs: string[] }
  | { name: 'ok-to-test' }
  | { name: 'land'; priority: number; single: boolean }
  | { name: 'unland' }
  | { name: 'queue'; action: 'pause' | 'resume' | 'drain' }
  | { name: 'help' };

/** A `/tower` line that is not a command Tower knows, or lacks what it needs. */
export type CommandProblem = { line: string; message: string };

export type ParsedCommands = { commands: Command[]; problems: CommandProblem[] };

type Spec = {
  /** What the command takes, for the help and for errors. */
  usage: string;
  summary: string;
  /** Who may use it. */
  who: string;
  parse(args: string[]): Command | string;
};

/** A job label or a glob of labels (`test/*`); no spaces, nothing that could be markup. */
const JOB_PATTERN = /^[A-Za-z0-9._\-/*?[\]{},!]+$/;

function jobs(name: 'retrigger' | 'run' | 'approve', what: string) {
  return (args: string[]): Command | string => {
    if (args.length === 0) return `\`/tower ${name}\` needs ${what}`;
    const bad = args.find((arg) => !JOB_PATTERN.test(arg));
    if (bad !== undefined) return `\`${bad}\` is not a job label or a glob of labels`;
    return { name, jobs: args };
  };
}

function bare(name: 'retry' | 'cancel' | 'ok-to-test' | 'unland' | 'help') {
  return (args: string[]): Command | string =>
    args.length === 0 ? { name } : `\`/tower ${name}\` takes nothing after it`;
}

export const COMMANDS: Readonly<Record<Command['name'], Spec>> = {
  retrigger: {
    usage: '/tower retrigger <job|glob> …',
    summary: 'run the jobs again (a new run each); the jobs that depend on them run again too',
    who: 'write permission',
    parse: jobs('retrigger', 'the jobs to run again: labels or globs such as `test/*`'),
  },
  retry: {
    usage: '/tower retry',
    summary: 'run every failed job again',
    who: 'write permission',
    parse: bare('retry'),
  },
  cancel: {
    usage: '/tower cancel',
    summary: "cancel the pull request's jobs that have not finished",
    who: 'write permission',
    parse: bare('cancel'),
  },
  run: {
    usage: '/tower run <job|glob> …',
    summary: 'run jobs the graph holds but does not run by default (inactive jobs)',
    who: 'write permission',
    parse: jobs('run', 'the inactive jobs to run: labels or globs'),
  },
  approve: {
    usage: '/tower approve <breakpoint> …',
    summary: 'approve a breakpoint job, so that the jobs after it go on',
    who: "the breakpoint's approvers",
    parse: jobs('approve', 'the breakpoint jobs to approve'),
  },
  'ok-to-test': {
    usage: '/tower ok-to-test',
    summary:
      "let a fork's pull request run, for its current head commit, on minions that take untrusted work",
    who: 'write permission',
    parse: bare('ok-to-test'),
  },
  land: {
    usage: '/tower land [p=N] [single]',
    summary:
      'queue the pull request to land on its base branch once its land graph passes; `p=N` for a priority (higher first, -100 to 100), `single` to land it alone',
    who: 'write permission, and the approvals the base branch asks for',
    parse(args) {
      let priority = 0;
      let single = false;
      for (const arg of args) {
        const p = /^p=(-?\d+)$/i.exec(arg);
        if (p && Math.abs(Number(p[1])) <= 100) priority = Number(p[1]);
        else if (arg.toLowerCase() === 'single') single = true;
        else
          return `\`${arg}\` is not an option of \`/tower land\`: use \`p=N\` (-100 to 100) or \`single\``;
      }
      return { name: 'land', priority, single };
    },
  },
  unland: {
    usage: '/tower unland',
    summary: 'take the pull request out of the landing queue',
    who: 'write permission',
    parse: bare('unland'),
  },
  queue: {
    usage: '/tower queue pause|resume|drain',
    summary:
      'pause the base branch’s landing queue (nothing starts or lands), resume it, or drain it (what is under way lands, then it pauses)',
    who: 'admin permission',
    parse(args) {
      const [action, ...rest] = args.map((a) => a.toLowerCase());
      if ((action === 'pause' || action === 'resume' || action === 'drain') && rest.length === 0) {
        return { name: 'queue', action };
      }
      return '`/tower queue` needs one of `pause`, `resume` or `drain`';
    },
  },
  help: {
    usage: '/tower help',
    summary: 'this list',
    who: 'anyone',
    parse: bare('help'),
  },
};

const names = Object.keys(COMMANDS) as Command['name'][];
const isName = (word: string): word is Command['name'] => (names as string[]).includes(word);

const FENCE = /^\s{0,3}(```|~~~)/;
const COMMAND_LINE = /^\s{0,3}\/tower(?=\s|$)(.*)$/i;

export function parseCommands(body: string): ParsedCommands {
  const commands: Command[] = [];
  const problems: CommandProblem[] = [];
  let fenced = false;
  for (const raw of body.split(/\r?\n/)) {
    if (FENCE.test(raw)) {
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    const match = COMMAND_LINE.exec(raw);
    if (!match) continue;
    const line = raw.trim();
    const [word, ...args] = match[1]!.trim().split(/\s+/).filter(Boolean);
    if (word === undefined) {
      commands.push({ name: 'help' });
      continue;
    }
    const name = word.toLowerCase();
    if (!isName(name)) {
      problems.push({ line, message: `Tower has no command \`${word}\`` });
      continue;
    }
    const parsed = COMMANDS[name].parse(args);
    if (typeof parsed === 'string') problems.push({ line, message: parsed });
    else commands.push(parsed);
  }
  return { commands, problems };
}

/** The help, as a Markdown table: what each command does and who may use it. */
export function commandHelp(): string {
  const rows = names.map((name) => {
    const spec = COMMANDS[name];
    return `| \`${spec.usage}\` | ${spec.summary} | ${spec.who} |`;
  });
  return [
    'Comment a command on a line of its own; a comment may hold several.',
    '',
    '| command | what it does | who may |',
    '| --- | --- | --- |',
    ...rows,
  ].join('\n');
}
