/** Runs `tower` commands as real processes, the way `npm start` does. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/**
 * Node itself with tsx's loader, as `npm start` runs it: signals reach Tower,
 * not a wrapper process that relays them (the tsx binary gives up on a busy
 * child after 30 ms and kills it, and a SIGKILL would end only the wrapper).
 */
const tsxLoader = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;
const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** The V8 flags `npm start` gives the server (its heap limit), so that tests run it the same way. */
const serveFlags: string[] = (
  (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      scripts: { start: string };
    }
  ).scripts.start.match(/--max-old-space-size=\d+/g) ?? []
).slice();

export type TowerProcess = {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
};

/** A minimal environment: nothing of the test runner's leaks into Tower's configuration. */
export function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...extra };
}

export function runTower(
  args: string[],
  { cwd, env }: { cwd: string; env: NodeJS.ProcessEnv },
): TowerProcess {
  const flags = args[0] === 'serve' ? serveFlags : [];
  const child = spawn(process.execPath, [...flags, '--import', tsxLoader, cli, ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return {
    child,
    output: () => output,
    exited,
    /** Signals it and waits for it to exit; one that does not within `timeoutMs` is killed, and the test told why. */
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (child.exitCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), timeoutMs);
      });
      const code = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (code !== 'late') return code;
      child.kill('SIGKILL');
      throw new Error(`Tower did not exit within ${timeoutMs} ms of ${signal}:\n${output}`);
    },
  };
}

/** Polls `/healthz` until it answers 200, the process exits, or the time runs out. */
/**
 * The URL a Tower started with `TOWER_PORT=0` listens on, from its log. A
 * port picked free beforehand can be taken by something else the process
 * starts first (its embedded simulator listens on port 0 too).
 */
export async function listeningUrl(tower: TowerProcess, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void tower.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    for (const line of tower.output().split('\n')) {
      if (!line.includes('Tower is listening')) continue;
      const { url } = JSON.parse(line) as { url?: string };
      if (url) return url;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Tower did not say where it listens:\n${tower.output()}`);
}

export async function waitForHealthy(tower: TowerProcess, url: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void tower.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.status === 200) return (await response.json()) as Record<string, unknown>;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Tower did not become healthy at ${url}:\n${tower.output()}`);
}
