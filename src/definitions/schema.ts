/**
 * The `.tower/` format, version 1, as zod schemas. The same schemas check
 * the files (with positions added by load.ts) and produce the JSON Schema
 * for editors (json-schema.ts). Each schema and its type share a name.
 *
 * What a single value cannot show (a name defined in another file, a key
 * that does not belong to the job's kind once its template is applied) is
 * checked after parsing, in load.ts and generate.ts.
 */
import { z } from 'zod';
import {
  eventTypes,
  jobKinds,
  jobResults,
  type EventType,
  type JobKind,
} from '../lib/graph-spec.js';
import { cronProblem } from './cron.js';
import {
  DURATION_PATTERN,
  durationHint,
  MAX_DURATION_SECONDS,
  parseDuration,
} from './durations.js';
import { branchPatternProblem, pathGlobProblem } from './globs.js';

export const DEFINITIONS_VERSION = 1 as const;

/** Fixed chunks beyond this are surely a mistake, and would swamp the graph. */
export const MAX_FIXED_CHUNKS = 1000;

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const nameRule = 'start with a letter or digit and hold only letters, digits, ".", "_" and "-"';
// __proto__ would vanish into the prototype of the plain objects that carry defines.
export const DEFINE_PATTERN = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_-]*$/;
const defineRule = 'start with a letter or "_" and hold only letters, digits, "_" and "-"';

export const VersionSchema = z.literal(DEFINITIONS_VERSION, {
  error: (issue) =>
    issue.input === undefined
      ? `missing "version: ${DEFINITIONS_VERSION}"`
      : `unsupported version ${JSON.stringify(issue.input)}: this Tower reads version ${DEFINITIONS_VERSION}`,
});

export const LabelSchema = z
  .string()
  .regex(NAME_PATTERN, { error: `a job label must ${nameRule} ("/" is reserved for chunks)` });
export const GraphNameSchema = z
  .string()
  .regex(NAME_PATTERN, { error: `a graph name must ${nameRule}` });
export const TemplateNameSchema = z
  .string()
  .regex(NAME_PATTERN, { error: `a template name must ${nameRule}` });
export const DefineNameSchema = z
  .string()
  .regex(DEFINE_PATTERN, { error: `a define name must ${defineRule}` });

/** A branch define that must be truthy, or `!name` for one that must not be. */
export const DefineConditionSchema = z
  .string()
  .regex(/^!?[A-Za-z_][A-Za-z0-9_-]*$/, {
    error: 'must name a branch define, or "!name" to negate it',
  })
  .meta({ description: 'A branch define that must be truthy; "!name" negates it.' });

export const DurationSchema = z
  .union(
    [
      z.int().min(1).max(MAX_DURATION_SECONDS),
      z
        .string()
        .regex(DURATION_PATTERN, { error: `must be ${durationHint}`, abort: true })
        .refine((text) => text !== '' && parseDuration(text)! > 0, {
          error: `must be ${durationHint}, above zero`,
          abort: true,
        })
        .refine((text) => parseDuration(text)! <= MAX_DURATION_SECONDS, {
          error: 'must be at most 365d',
        }),
    ],
    { error: `must be ${durationHint}` },
  )
  .meta({ description: 'A duration: 90s, 20m, 2h, 1d, 1h30m, or whole seconds.' });

function checked(problem: (value: string) => string | undefined) {
  return (value: string, ctx: z.RefinementCtx) => {
    const message = problem(value);
    if (message) ctx.addIssue({ code: 'custom', message });
  };
}

export const PathGlobSchema = z.string().superRefine(checked(pathGlobProblem));
export const BranchPatternSchema = z.string().superRefine(checked(branchPatternProblem));

export const JobResultSchema = z.enum(jobResults);
export type JobResultName = z.infer<typeof JobResultSchema>;

/** What a dependency must end with: a keyword, one result, or a list of results. */
export const ConditionSchema = z
  .union([
    z.enum(['finished', 'any', ...jobResults]),
    z.array(JobResultSchema).min(1, { error: 'an empty list of results can never be satisfied' }),
  ])
  .meta({
    description:
      'success, finished (success, warning, failure, exception, timed-out), any, one result, or a list of results.',
  });
export type Condition = z.infer<typeof ConditionSchema>;

export const NeedsSchema = z
  .union([z.array(LabelSchema), z.record(LabelSchema, ConditionSchema)], {
    error: 'must be a list of job labels, or a mapping from job label to condition',
  })
  .meta({
    description:
      'Jobs this job waits for: a list of labels (each must succeed, perhaps with warnings), or label: condition.',
  });
export type Needs = z.infer<typeof NeedsSchema>;

export const ChunkRangeSchema = z
  .strictObject({ min: z.int().min(1), max: z.int().min(1).max(MAX_FIXED_CHUNKS) })
  .superRefine((range, ctx) => {
    if (range.min > range.max) {
      ctx.addIssue({
        code: 'custom',
        message: `chunks min (${range.min}) is greater than max (${range.max})`,
      });
    }
  });

export const ChunksSchema = z
  .union([z.int().min(1).max(MAX_FIXED_CHUNKS), ChunkRangeSchema], {
    error: 'must be a whole number of chunks, or { min, max }',
  })
  .meta({
    description: `A fixed number of chunks (label/1 … label/N), or { min, max } decided at dispatch; at most ${MAX_FIXED_CHUNKS}.`,
  });
export type Chunks = z.infer<typeof ChunksSchema>;

export const requestTimeoutResults = ['timed-out', 'skipped', 'failure', 'success'] as const;

const TagSchema = z
  .string()
  .regex(/^[^\s,]+$/, { error: 'a minion tag is one word, without spaces or commas' });
const EnvNameSchema = z.string().regex(/^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]*$/, {
  error: 'an environment variable name holds only letters, digits and "_"',
});
const EnvValueSchema = z.string({
  error: (issue) => `environment values are strings: quote it, as in "${String(issue.input)}"`,
});
const ApproverSchema = z
  .string()
  .regex(/^(?:team:[A-Za-z0-9][A-Za-z0-9._/-]*|[A-Za-z0-9][A-Za-z0-9-]*)$/, {
    error: 'an approver is a GitHub login or team:slug',
  });
const NonEmpty = z.string().min(1, { error: 'must not be empty' });

/** Every key a job (or template) may have; which ones apply depends on its kind. */
export const JobSchema = z
  .strictObject({
    use: TemplateNameSchema.optional().meta({
      description:
        "A template whose keys this job starts from; the job's own keys win, env merges.",
    }),
    kind: z
      .enum(jobKinds)
      .optional()
      .meta({ description: 'command (the default), dummy, breakpoint, timer, notify or trigger.' }),
    description: z.string().optional().meta({ description: 'Free text for readers; ignored.' }),
    needs: NeedsSchema.optional(),
    changed: z
      .array(PathGlobSchema)
      .min(1, { error: 'list at least one pattern, or leave changed out' })
      .optional()
      .meta({
        description:
          'Path filter: the job runs only when a changed file matches one of these globs ("!glob" excludes).',
      }),
    requires: z
      .array(TagSchema)
      .min(1, { error: 'a command job requires at least one minion tag' })
      .optional()
      .meta({
        description: 'Command jobs: minion tags, all required.',
      }),
    command: NonEmpty.optional().meta({
      description: 'Command jobs: the shell command; ${{ name }} substitutes.',
    }),
    env: z
      .record(EnvNameSchema, EnvValueSchema)
      .optional()
      .meta({ description: 'Command jobs: environment variables (strings).' }),
    artifacts: z
      .array(PathGlobSchema)
      .optional()
      .meta({ description: 'Command jobs: globs of files to keep.' }),
    chunks: ChunksSchema.optional(),
    max_runtime: DurationSchema.optional().meta({
      description: 'Command and trigger jobs: longest a run may take.',
    }),
    idle_timeout: DurationSchema.optional().meta({
      description: 'Command jobs: longest a run may go without output.',
    }),
    request_timeout: DurationSchema.optional().meta({
      description: 'Command and breakpoint jobs: longest to wait for a minion or an approval.',
    }),
    on_request_timeout: z.enum(requestTimeoutResults).optional().meta({
      description: 'The result a request timeout ends the job with (timed-out by default).',
    }),
    retries: z.int().min(0).max(10).optional().meta({
      description: 'Command jobs: automatic retries after infrastructure failures (0–10).',
    }),
    priority: z.int().min(-1000).max(1000).optional().meta({
      description: "Command jobs: higher runs first; capped at the branch's max_priority.",
    }),
    result: JobResultSchema.optional().meta({
      description: 'Dummy jobs: a forced result, for testing graphs.',
    }),
    approvers: z
      .array(ApproverSchema)
      .min(1, { error: 'list at least one approver' })
      .optional()
      .meta({
        description: 'Breakpoint jobs: GitHub logins or team:slug who may approve.',
      }),
    delay: DurationSchema.optional().meta({
      description: 'Timer jobs: how long to wait once the dependencies are met.',
    }),
    at: z.iso
      .datetime({
        offset: true,
        error: 'must be an ISO 8601 timestamp with a time zone, such as 2025-01-31T18:00:00Z',
      })
      .optional()
      .meta({ description: 'Timer jobs: when to fire, an ISO 8601 timestamp with a time zone.' }),
    comment: NonEmpty.optional().meta({
      description: 'Notify jobs: a pull-request or commit comment; ${{ name }} substitutes.',
    }),
    webhook: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .optional()
      .meta({
        description: 'Notify jobs: a URL that receives a POST.',
      }),
    cluster: z
      .string()
      .regex(NAME_PATTERN, { error: `a cluster name must ${nameRule}` })
      .optional()
      .meta({ description: 'Trigger jobs: the peer cluster.' }),
    graph: GraphNameSchema.optional().meta({
      description: 'Trigger jobs: the graph the peer builds.',
    }),
  })
  .meta({ description: 'A job. Keys that do not belong to its kind are errors.' });
export type Job = z.infer<typeof JobSchema>;
export type JobKey = keyof Job;

/** A template has the keys of a job, except that it cannot use another template. */
export const TemplateSchema = JobSchema.omit({ use: true }).meta({
  description: 'Job keys shared by the jobs that use it.',
});
export type Template = z.infer<typeof TemplateSchema>;

/** The keys each kind accepts, besides use, kind, description, needs and changed. */
export const kindKeys = {
  command: [
    'requires',
    'command',
    'env',
    'artifacts',
    'chunks',
    'max_runtime',
    'idle_timeout',
    'request_timeout',
    'on_request_timeout',
    'retries',
    'priority',
  ],
  dummy: ['result'],
  breakpoint: ['approvers', 'request_timeout', 'on_request_timeout'],
  timer: ['delay', 'at'],
  notify: ['comment', 'webhook'],
  trigger: ['cluster', 'graph', 'max_runtime'],
} satisfies Record<JobKind, JobKey[]>;
export const commonKeys = ['use', 'kind', 'description', 'needs', 'changed'] satisfies JobKey[];

export const IncludeSchema = z
  .union([
    GraphNameSchema,
    z.strictObject({
      graph: GraphNameSchema,
      active: z
        .union([z.boolean(), DefineConditionSchema], {
          error: 'must be true, false, a define name or "!name"',
        })
        .optional()
        .meta({
          description: 'The included jobs are inactive unless this holds (true by default).',
        }),
    }),
  ])
  .meta({ description: 'A graph whose jobs join this one: a name, or { graph, active }.' });
export type Include = z.infer<typeof IncludeSchema>;

export const GraphSchema = z
  .strictObject({
    description: z.string().optional(),
    jobs: z.record(LabelSchema, JobSchema).optional(),
    include: z.array(IncludeSchema).optional(),
  })
  .meta({ description: 'A graph: its own jobs and the graphs it includes.' });
export type Graph = z.infer<typeof GraphSchema>;

const CronSchema = z.string().superRefine(checked(cronProblem));

export const CronSchedulerSchema = z.strictObject({
  on: z.literal('cron'),
  schedule: CronSchema.meta({ description: 'Five cron fields (UTC), or @daily and the like.' }),
  branch: z.string().min(1).meta({ description: 'The branch whose head is built.' }),
  graph: GraphNameSchema,
  when: DefineConditionSchema.optional(),
  description: z.string().optional(),
});

export const EventSchedulerSchema = z.strictObject({
  on: z.enum(['push', 'pull_request', 'land', 'trigger', 'api'] satisfies Exclude<
    EventType,
    'cron'
  >[]),
  branches: z
    .array(BranchPatternSchema)
    .min(1, { error: 'list at least one branch, or leave branches out for all' })
    .optional()
    .meta({
      description: 'Branch globs; omitted, every branch. For pull_request, the base branch.',
    }),
  graph: GraphNameSchema,
  when: DefineConditionSchema.optional(),
  description: z.string().optional(),
});

export const SchedulerSchema = z
  .discriminatedUnion('on', [EventSchedulerSchema, CronSchedulerSchema])
  .meta({ description: 'Which event builds which graph.' });
export type Scheduler = z.infer<typeof SchedulerSchema>;

export const DefineValueSchema = z.union([z.string(), z.number(), z.boolean()], {
  error: 'a define is a string, a number or true/false',
});
export type DefineValue = z.infer<typeof DefineValueSchema>;

export const BranchDefinesSchema = z
  .object({
    max_priority: z
      .int()
      .min(-1000)
      .max(1000)
      .optional()
      .meta({ description: 'Caps the priority of every job.' }),
  })
  .catchall(DefineValueSchema)
  .meta({ description: 'Defines: name: string, number or true/false.' });
export type BranchDefines = z.infer<typeof BranchDefinesSchema>;

export const BranchesSchema = z.record(BranchPatternSchema, BranchDefinesSchema).meta({
  description:
    'Branch defines: default, then the exact branch name, then matching globs in order; later wins.',
});

export const LANDING_METHODS = ['merge', 'squash', 'rebase'] as const;

export const LandingSchema = z
  .strictObject({
    description: z.string().optional(),
    branches: z
      .array(BranchPatternSchema)
      .min(1, { error: 'list at least one base branch, or leave branches out for all' })
      .optional()
      .meta({ description: 'Base branches with a landing queue (globs); omitted, every branch.' }),
    method: z
      .enum(LANDING_METHODS)
      .optional()
      .meta({ description: 'How pull requests land: merge (default), squash or rebase.' }),
    approvals: z
      .int({ error: 'must be a whole number of approving reviews, 0 to 10' })
      .min(0, { error: 'must be a whole number of approving reviews, 0 to 10' })
      .max(10, { error: 'must be a whole number of approving reviews, 0 to 10' })
      .optional()
      .meta({ description: 'Approving reviews a pull request needs to be queued (default 1).' }),
    label: z
      .string()
      .min(1)
      .max(50)
      .optional()
      .meta({ description: 'A label that queues the pull request, as /tower land does.' }),
    batch: z
      .strictObject({
        min: z.int().min(1).max(100),
        max: z.int().min(1).max(100),
      })
      .refine((b) => b.min <= b.max, { error: 'batch min is greater than max' })
      .optional()
      .meta({
        description:
          'Pull requests a batch tests at once, sized from the failure rate between these (default 1 to 8).',
      }),
    parallel: z
      .int({ error: 'must be a whole number of land graphs, 1 to 32' })
      .min(1, { error: 'must be a whole number of land graphs, 1 to 32' })
      .max(32, { error: 'must be a whole number of land graphs, 1 to 32' })
      .optional()
      .meta({ description: 'Land graphs at once, at most (default 4).' }),
  })
  .meta({
    description:
      'The landing queue of these base branches. Read from the base branch, never from a pull request.',
  });
export type Landing = z.infer<typeof LandingSchema>;

export const DefinitionsFileSchema = z.strictObject({
  version: VersionSchema,
  branches: BranchesSchema.optional(),
  schedulers: z.array(SchedulerSchema).optional(),
  landing: LandingSchema.optional(),
  templates: z.record(TemplateNameSchema, TemplateSchema).optional(),
  graphs: z.record(GraphNameSchema, GraphSchema).optional(),
});
export type DefinitionsFile = z.infer<typeof DefinitionsFileSchema>;

/** `.tower/branches/*.yml`: branch defines only, so a release branch's defines live in a file of their own. */
export const BranchFileSchema = z.strictObject({
  version: VersionSchema,
  branches: BranchesSchema.optional(),
});

const AssertionLabelSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[1-9]\d*)?$/, {
  error: 'must be a job label, or label/N for one chunk',
});
const labels = (description: string) =>
  z.array(AssertionLabelSchema).optional().meta({ description });

export const GraphTestSchema = z.strictObject({
  name: z.string().min(1),
  event: z.enum(eventTypes),
  branch: z.string().min(1),
  sha: z.string().optional(),
  number: z.int().optional(),
  author: z.string().optional(),
  schedule: z.string().optional(),
  changed: z
    .array(z.string())
    .optional()
    .meta({ description: 'Changed files; left out, every path filter passes.' }),
  graphs: z
    .array(GraphNameSchema)
    .optional()
    .meta({ description: 'Exactly the graphs built, in any order.' }),
  present: labels('Jobs in some built graph.'),
  absent: labels('Jobs in no built graph.'),
  active: labels('Jobs present and active.'),
  inactive: labels('Jobs present and inactive.'),
  filtered: labels('Jobs present and excluded by their path filter.'),
  unfiltered: labels('Jobs present and not excluded by their path filter.'),
});
export type GraphTest = z.infer<typeof GraphTestSchema>;

/** `.tower/tests/*.yml`: assertions about the graphs that events build. */
export const GraphTestsFileSchema = z.strictObject({
  version: VersionSchema,
  tests: z.array(GraphTestSchema),
});
