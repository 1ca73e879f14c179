/**
 * `/tower` comment commands (docs/commands.md), parsed from a comment body,
 * and job globs matched against labels. Pure. A command is a line of its
 * own that starts with `/tower`, in any case; a comment may hold several.
 * Lines in fenced code blocks and quoted lines (`> /tower retry`, as a
 * reply quotes) are not commands, so quoting a command never runs it again.
 *
 * Globs come from anyone who can comment and labels from anyone who can
 * open a pull request, and a glob's cost grows as a power of the label's
 * length: patterns are bounded here, and `matchJobs` refuses a match whose
 * cost is past a budget instead of freezing the server.
 */
import { compileGlob } from '../definitions/globs.js';

export type Command =
  | { name: 'retrigger'; jobs: string[] }
  | { name: 'retry' }
  | { name: 'cancel' }
  | { name: 'run'; jobs: string[] }
  | { name: 'approve'; jobs: string[] }
  | { name: 'ok-to-test'; sha?: string }
  | { name: 'land'; priority: number; single: boolean; sha?: string }
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
/** A commit a command names: 7 to 40 hex digits, as GitHub abbreviates them. */
const SHA_PATTERN = /^[0-9a-f]{7,40}$/i;

/** Bounds on what a comment may ask to match. */
export const PATTERN_LIMITS = {
  /** Characters of one pattern. */
  length: 100,
  /** `*` and `?` in one pattern. */
  wildcards: 10,
  /** Patterns of one command. */
  patterns: 20,
  /** Commands of one comment. */
  commands: 10,
  /**
   * Steps one command's matching may cost, summed over jobs × patterns (a
   * pattern with k runs of `*` against a label of n characters costs
   * C(n + k, k): the ways a backtracking matcher may split the label).
   */
  budget: 5_000_000,
} as const;

function patternProblem(pattern: string): string | undefined {
  if (!JOB_PATTERN.test(pattern)) return `\`${pattern}\` is not a job label or a glob of labels`;
  const shown = pattern.length > 30 ? `${pattern.slice(0, 30)}…` : pattern;
  if (pattern.length > PATTERN_LIMITS.length) {
    return `\`${shown}\` is too long: a pattern has at most ${PATTERN_LIMITS.length} characters`;
  }
  const wildcards = pattern.replace(/[^*?]/g, '').length;
  if (wildcards > PATTERN_LIMITS.wildcards) {
    return `\`${shown}\` is too complex: a pattern has at most ${PATTERN_LIMITS.wildcards} wildcards (\`*\` and \`?\`), and it has ${wildcards}`;
  }
  try {
    compileGlob(pattern);
  } catch {
    return `\`${shown}\` is not a valid glob`;
  }
  return undefined;
}

function jobs(name: 'retrigger' | 'run' | 'approve', what: string) {
  return (args: string[]): Command | string => {
    if (args.length === 0) return `\`/tower ${name}\` needs ${what}`;
    if (args.length > PATTERN_LIMITS.patterns) {
      return `\`/tower ${name}\` takes at most ${PATTERN_LIMITS.patterns} jobs or globs`;
    }
    for (const arg of args) {
      const problem = patternProblem(arg);
      if (problem !== undefined) return problem;
    }
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
    usage: '/tower ok-to-test [sha]',
    summary:
      "let a fork's pull request run, for the head commit you saw (or the one named), on minions that take untrusted work",
    who: 'write permission',
    parse(args) {
      const [sha, ...rest] = args;
      if (sha === undefined) return { name: 'ok-to-test' };
      if (rest.length === 0 && SHA_PATTERN.test(sha)) return { name: 'ok-to-test', sha };
      return '`/tower ok-to-test` takes nothing after it, or the head commit it is for (7 to 40 hex digits)';
    },
  },
  land: {
    usage: '/tower land [p=N] [single] [sha]',
    summary:
      'queue the pull request to land on its base branch once its land graph passes; `p=N` for a priority (higher first, -100 to 100), `single` to land it alone, a sha to name the head commit you mean',
    who: 'write permission, and the approvals the base branch asks for',
    parse(args) {
      let priority = 0;
      let single = false;
      let sha: string | undefined;
      for (const arg of args) {
        const p = /^p=(-?\d+)$/i.exec(arg);
        if (p && Math.abs(Number(p[1])) <= 100) priority = Number(p[1]);
        else if (arg.toLowerCase() === 'single') single = true;
        else if (SHA_PATTERN.test(arg)) sha = arg.toLowerCase();
        else
          return `\`${arg}\` is not an option of \`/tower land\`: use \`p=N\` (-100 to 100), \`single\` or the head commit's sha`;
      }
      return { name: 'land', priority, single, ...(sha === undefined ? {} : { sha }) };
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
    if (commands.length >= PATTERN_LIMITS.commands) {
      problems.push({
        line,
        message: `a comment holds at most ${PATTERN_LIMITS.commands} commands: this one was not carried out`,
      });
      continue;
    }
    const parsed = COMMANDS[name].parse(args);
    if (typeof parsed === 'string') problems.push({ line, message: parsed });
    else commands.push(parsed);
  }
  return { commands, problems };
}

/** C(n + k, k), saturating at the budget (anything past it is refused anyway). */
function splits(n: number, k: number): number {
  let ways = 1;
  for (let i = 1; i <= k && ways <= PATTERN_LIMITS.budget; i++) ways = (ways * (n + i)) / i;
  return ways;
}

/**
 * The labels the patterns match, with the one glob matcher of
 * definitions (src/definitions/globs.ts); `too-complex` when the match
 * would cost more than the budget, before anything is matched. A pattern
 * without glob characters is compared, not matched.
 */
export function matchJobs(
  labels: readonly string[],
  patterns: readonly string[],
): { kind: 'matched'; labels: Set<string> } | { kind: 'too-complex'; message: string } {
  let cost = 0;
  for (const pattern of patterns) {
    const stars = pattern.match(/\*+/g)?.length ?? 0;
    for (const label of labels) cost += splits(label.length, stars);
  }
  if (cost > PATTERN_LIMITS.budget) {
    return {
      kind: 'too-complex',
      message: `the patterns are too complex to match against ${labels.length} job${labels.length === 1 ? '' : 's'}: use fewer \`*\`, or name the jobs`,
    };
  }
  const matched = new Set<string>();
  for (const pattern of patterns) {
    if (!/[*?[\]{}!]/.test(pattern)) {
      if (labels.includes(pattern)) matched.add(pattern);
      continue;
    }
    const matches = compileGlob(pattern);
    for (const label of labels) if (matches(label)) matched.add(label);
  }
  return { kind: 'matched', labels: matched };
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
