/**
 * The minion protocol v1's request bodies (docs/api.md). Each schema and its
 * type share a name; only the fields the protocol uses are declared.
 */
import { z } from 'zod';
import { jobResults } from '../lib/graph-spec.js';
import type { Scheduler } from '../scheduler/scheduler.js';

/** From least to most trusted: a registration token grants one, and any below it may be asked for. */
export const minionTrusts = ['untrusted', 'trusted', 'restricted'] as const;
export type MinionTrust = (typeof minionTrusts)[number];

export const MAX_LOG_CHUNK_BYTES = 1024 * 1024;
/** The most log a run stores unless TOWER_LOG_MAX_BYTES says otherwise. */
export const DEFAULT_LOG_MAX_BYTES = 64 * 1024 * 1024;
/**
 * The end of a run's log kept for the note that says it was cut short:
 * ordinary chunks stop this far below the cap, the note alone may use it.
 */
export const LOG_NOTE_ROOM_BYTES = 256;

/** The line a minion ends a log with when the server refused more of it (413). */
export function logTruncatedNote(bytes: number): string {
  return `[tower] log truncated at ${bytes} bytes: the rest of the output was dropped\n`;
}

/** Whether a chunk is that note and nothing else: only it goes into the room kept for it. */
export function isLogTruncatedNote(data: string): boolean {
  return /^\[tower\] log truncated at \d{1,15} bytes: the rest of the output was dropped\n$/.test(
    data,
  );
}
export const MAX_ARTIFACT_BYTES = 100 * 1024 * 1024;
export const DEFAULT_CLAIM_WAIT_SECONDS = 20;
export const DEFAULT_LEASE_SECONDS = 120;

const Tag = z
  .string()
  .regex(/^[a-z0-9._-]+$/, { error: 'must be lowercase letters, digits, ".", "_" or "-"' });

/** A job label as `.tower/` spells it, a chunk's (`test/3`) included. */
const JobLabel = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[1-9]\d*)?$/, {
  error:
    'must be a job label: a letter or digit, then letters, digits, ".", "_" or "-" (and "/<n>" for a chunk)',
});

export const RegisterRequest = z.object({
  name: z
    .string({ error: 'must be a string' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(200, { error: 'must be at most 200 characters' }),
  tags: z
    .array(Tag, { error: 'must be an array of tags' })
    .min(1, { error: 'must list at least one tag' })
    .max(100, { error: 'must list at most 100 tags' }),
  /**
   * The trust asked for; the registration token decides what may be had
   * (src/minions/protocol.ts). Absent, the minion gets what its token grants.
   */
  trust: z.enum(minionTrusts, { error: `must be one of ${minionTrusts.join(', ')}` }).optional(),
  /** Restricted minions only: the labels of the jobs they take (from protected branches). */
  jobs: z
    .array(JobLabel, { error: 'must be an array of job labels' })
    .max(1000, { error: 'must list at most 1000 job labels' })
    .optional(),
});
export type RegisterRequest = z.infer<typeof RegisterRequest>;

export const ClaimRequest = z.object({
  waitSeconds: z
    .number({ error: 'must be a number of seconds from 0 to 20' })
    .min(0, { error: 'must be a number of seconds from 0 to 20' })
    .max(20, { error: 'must be a number of seconds from 0 to 20' })
    .default(DEFAULT_CLAIM_WAIT_SECONDS),
});
export type ClaimRequest = z.infer<typeof ClaimRequest>;

export const HeartbeatRequest = z.object({
  leaseSeconds: z
    .number({ error: 'must be a number of seconds from 10 to 600' })
    .min(10, { error: 'must be a number of seconds from 10 to 600' })
    .max(600, { error: 'must be a number of seconds from 10 to 600' })
    .default(DEFAULT_LEASE_SECONDS),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

export const LogChunk = z.object({
  seq: z
    .number({ error: 'must be a whole number from 0' })
    .int({ error: 'must be a whole number from 0' })
    .min(0, { error: 'must be a whole number from 0' })
    .max(2_147_483_647, { error: 'must fit in 32 bits' }),
  data: z
    .string({ error: 'must be a string' })
    .refine((data) => Buffer.byteLength(data, 'utf8') <= MAX_LOG_CHUNK_BYTES, {
      error: `must be at most 1 MiB (${MAX_LOG_CHUNK_BYTES} bytes of UTF-8)`,
    }),
});
export type LogChunk = z.infer<typeof LogChunk>;

type ReportableReason = NonNullable<Parameters<Scheduler['finishRun']>[0]['reason']>;
const reportableReasons = [
  'minion-shutdown',
  'max-runtime',
  'idle-timeout',
] as const satisfies readonly ReportableReason[];

export const ReportRequest = z.object({
  result: z.enum(jobResults, { error: `must be one of ${jobResults.join(', ')}` }),
  exitCode: z
    .number({ error: 'must be a whole number' })
    .int({ error: 'must be a whole number' })
    .min(-2_147_483_648, { error: 'must fit in 32 bits' })
    .max(2_147_483_647, { error: 'must fit in 32 bits' })
    .optional(),
  reason: z
    .enum(reportableReasons, { error: `must be one of ${reportableReasons.join(', ')}` })
    .optional(),
});
export type ReportRequest = z.infer<typeof ReportRequest>;

/** An artifact's name: a relative path of plain segments, no `..`, at most 255 characters. */
export const ArtifactName = z
  .string()
  .min(1, { error: 'must not be empty' })
  .max(255, { error: 'must be at most 255 characters' })
  .refine((name) => !name.startsWith('/'), { error: 'must be a relative path' })
  .refine((name) => !/[\\\0]/.test(name), { error: 'must not contain "\\" or NUL' })
  .refine((name) => name.split('/').every((part) => part !== '' && part !== '.' && part !== '..'), {
    error: 'must not contain empty, "." or ".." segments',
  });

/** A run or graph id in a path. */
export const Id = z.coerce
  .number({ error: 'must be a positive whole number' })
  .int({ error: 'must be a positive whole number' })
  .min(1, { error: 'must be a positive whole number' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'must be a positive whole number' });

/** "field: problem; other: problem", naming the body itself when the issue is at the root. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], root = 'body'): string {
  return issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : root}: ${issue.message}`)
    .join('; ');
}
