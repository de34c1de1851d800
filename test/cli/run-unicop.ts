/**
 * Runs the compiled `unicop` executable (dist/bin/unicop.js, `npm run build`) as an operator would,
 * by plain node, with exactly the environment given (PATH and nothing else of the test's own).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../core/config.js';

export const unicopJs = join(repoRoot, 'dist', 'bin', 'unicop.js');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  /** What it wrote so far. */
  stdout(): string;
  done: Promise<Ran>;
}

export function assertBuilt(): void {
  if (!existsSync(unicopJs)) throw new Error(`${unicopJs} is missing: run \`npm run build\` first`);
}

export function startUnicop(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [unicopJs, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d;
  });
  const done = new Promise<Ran>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, stdout: () => stdout, done };
}

export function runUnicop(args: string[], env: Record<string, string>): Promise<Ran> {
  return startUnicop(args, env).done;
}
