/**
 * `unicop healthcheck [bridge|workers]`: the image's HEALTHCHECK. GETs /healthz of the service this
 * container runs, on 127.0.0.1 — the bridge's port, or the workers' metrics listener. Without an
 * argument the service is read from PID 1's command line (the container's `unicop <service>`).
 * Exit 0 when /healthz answers 200, 1 otherwise.
 */
import { readFileSync } from 'node:fs';
import { configSchema } from '../config.js';
import type { Service } from './dependencies.js';

export function serviceOfPid1(cmdline = readCmdline('/proc/1/cmdline')): Service | undefined {
  const words = cmdline.split('\0');
  if (words.includes('bridge')) return 'bridge';
  if (words.includes('workers')) return 'workers';
  return undefined;
}

function readCmdline(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function healthPort(service: Service, env: Record<string, string | undefined>): number {
  return service === 'bridge'
    ? configSchema.shape.UNICOP_BRIDGE_PORT.parse(env.UNICOP_BRIDGE_PORT)
    : configSchema.shape.UNICOP_WORKERS_METRICS_PORT.parse(env.UNICOP_WORKERS_METRICS_PORT);
}

export async function healthcheck(
  service: Service | undefined,
  env: Record<string, string | undefined>,
): Promise<{ ok: boolean; detail: string }> {
  const which = service ?? serviceOfPid1();
  if (!which) return { ok: false, detail: 'cannot tell which service runs here: name it (bridge|workers)' };
  const port = healthPort(which, env);
  if (port === 0) return { ok: false, detail: `${which}: no HTTP listener configured (port 0)` };
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
    return { ok: res.status === 200, detail: `${which} /healthz on port ${port}: ${res.status}` };
  } catch (error) {
    return { ok: false, detail: `${which} /healthz on port ${port}: ${(error as Error).message}` };
  }
}
