/**
 * `tower graph`, `tower graph check`, `tower graph test`, `tower init` and
 * `tower schema`: the definitions on a laptop, without any server. This is
 * the I/O around the pure src/definitions/ and src/graph/.
 */
import { execFile as execFileCb } from 'node:child_process';
import { cp, readFile, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  definitionsJsonSchema,
  graphTestsJsonSchema,
  formatDiagnostic,
  generateGraphs,
  checkDefinitions,
  runGraphTests,
  type Diagnostic,
  type SourceFile,
} from '../definitions/index.js';
import { renderDot, renderJson, renderText } from '../graph/render.js';
import { eventTypes, type EventType, type GraphSpec } from '../lib/graph-spec.js';

const execFile = promisify(execFileCb);

export type Output = { out(text: string): void; err(text: string): void };

export const starterDirectory = fileURLToPath(
  new URL('../../templates/starter/.tower', import.meta.url),
);

/** Every YAML file under `<dir>/.tower`, with paths relative to `dir` as in the repository. */
export async function readDefinitionFiles(dir: string): Promise<SourceFile[]> {
  const root = join(dir, '.tower');
  const files: SourceFile[] = [];
  async function walk(current: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.ya?ml$/.test(entry.name)) {
        files.push({
          path: relative(dir, path).split(sep).join('/'),
          content: await readFile(path, 'utf8'),
        });
      }
    }
  }
  await walk(root);
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function git(dir: string, args: string[]): Promise<string | undefined> {
  try {
    return (await execFile('git', ['-C', dir, ...args])).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

function report(diagnostics: Diagnostic[], output: Output): boolean {
  for (const d of diagnostics) output.err(`${formatDiagnostic(d)}\n`);
  return diagnostics.some((d) => d.severity === 'error');
}

export type GraphOptions = {
  event: string;
  branch?: string;
  sha?: string;
  changedFiles?: string;
  format: string;
  graph?: string;
};

/** `tower graph [dir]`: prints the graphs an event would build. Exit code 0, 1 (definition errors) or 2 (usage). */
export async function graphCommand(
  dir: string,
  options: GraphOptions,
  output: Output,
): Promise<number> {
  if (!(eventTypes as readonly string[]).includes(options.event)) {
    output.err(`tower graph: --event must be one of ${eventTypes.join(', ')}\n`);
    return 2;
  }
  if (!['json', 'dot', 'text'].includes(options.format)) {
    output.err('tower graph: --format must be json, dot or text\n');
    return 2;
  }
  const files = await readDefinitionFiles(dir);
  if (files.length === 0) {
    output.err(`tower graph: no .tower/ definitions in ${dir} (try \`tower init\`)\n`);
    return 1;
  }
  let changedFiles: string[] | null = null;
  if (options.changedFiles) {
    const text =
      options.changedFiles === '-'
        ? await readStdin()
        : await readFile(options.changedFiles, 'utf8');
    changedFiles = text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
  }
  const branch =
    options.branch ?? (await git(dir, ['rev-parse', '--abbrev-ref', 'HEAD'])) ?? 'main';
  const sha = options.sha ?? (await git(dir, ['rev-parse', 'HEAD'])) ?? '0'.repeat(40);
  const { specs, diagnostics } = generateGraphs(files, {
    type: options.event as EventType,
    branch,
    sha,
    changedFiles,
  });
  if (report(diagnostics, output)) return 1;
  const selected = options.graph ? specs.filter((s) => s.graph === options.graph) : specs;
  if (selected.length === 0) {
    output.err(
      options.graph
        ? `tower graph: ${options.event} on ${branch} does not build the graph ${options.graph}\n`
        : `tower graph: no scheduler builds a graph for ${options.event} on ${branch}\n`,
    );
    return 0;
  }
  output.out(render(selected, options.format));
  return 0;
}

function render(specs: GraphSpec[], format: string): string {
  if (format === 'json') {
    return specs.length === 1
      ? renderJson(specs[0]!)
      : `[\n${specs.map((s) => renderJson(s).trimEnd()).join(',\n')}\n]\n`;
  }
  if (format === 'dot') return specs.map((s) => renderDot(s)).join('\n');
  return specs.map((s) => renderText(s)).join('\n');
}

/** `tower graph check [dir]`: every error as file:line:col, exit 1 when there is one. */
export async function graphCheckCommand(dir: string, output: Output): Promise<number> {
  const files = await readDefinitionFiles(dir);
  if (files.length === 0) {
    output.err(`tower graph check: no .tower/ definitions in ${dir}\n`);
    return 1;
  }
  const diagnostics = checkDefinitions(files);
  const failed = report(diagnostics, output);
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  output.err(`${files.length} file(s) checked: ${errors} error(s), ${warnings} warning(s)\n`);
  return failed ? 1 : 0;
}

/** `tower graph test [dir]`: runs .tower/tests/*.yml; exit 1 when one fails. */
export async function graphTestCommand(dir: string, output: Output): Promise<number> {
  const files = await readDefinitionFiles(dir);
  const { results, diagnostics } = runGraphTests(files);
  const broken = report(diagnostics, output);
  for (const result of results) {
    output.out(`${result.passed ? 'ok  ' : 'FAIL'} ${result.file}: ${result.name}\n`);
    for (const failure of result.failures) output.out(`       ${failure}\n`);
  }
  const failed = results.filter((r) => !r.passed).length;
  output.out(`${results.length - failed} passed, ${failed} failed\n`);
  return broken || failed > 0 ? 1 : 0;
}

/** `tower init [dir]`: writes the starter .tower/ from templates/, never over an existing one. */
export async function initCommand(dir: string, output: Output): Promise<number> {
  const target = join(dir, '.tower');
  if (await stat(target).catch(() => undefined)) {
    output.err(`tower init: ${target} already exists; nothing written\n`);
    return 1;
  }
  await cp(starterDirectory, target, { recursive: true });
  const written = (await readDefinitionFiles(dir)).map((f) => f.path);
  output.out(`Wrote ${written.join(', ')}\nNext: tower graph check, then tower graph test.\n`);
  return 0;
}

/** `tower schema [--tests]`: the JSON Schema of definition files (or of graph assertion files), for editors. */
export function schemaCommand(output: Output, options: { tests?: boolean } = {}): number {
  const schema = options.tests ? graphTestsJsonSchema() : definitionsJsonSchema();
  output.out(`${JSON.stringify(schema, null, 2)}\n`);
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
