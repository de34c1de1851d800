/**
 * `unicop healthcheck [bridge|workers]`: the image's HEALTHCHECK. GETs /healthz of the service this
 * container runs where that service listens — the bridge's UNICOP_BRIDGE_HOST:PORT, or the workers'
 * UNICOP_WORKERS_METRICS_HOST:PORT. A wildcard address (0.0.0.0, ::) listens on every address and is
 * asked on loopback (127.0.0.1, ::1); any other address or host name is asked as it is, so a service
 * bound to one interface is still found. Without an argument the service is read from PID 1's
 * command line (the container's `unicop <service>`). Exit 0 when /healthz answers 200, 1 otherwise.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
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

const listenerKeys = {
  bridge: { host: 'UNICOP_BRIDGE_HOST', port: 'UNICOP_BRIDGE_PORT' },
  workers: { host: 'UNICOP_WORKERS_METRICS_HOST', port: 'UNICOP_WORKERS_METRICS_PORT' },
} as const satisfies Record<
  Service,
  { host: keyof typeof configSchema.shape; port: keyof typeof configSchema.shape }
>;

/** The service's listener as its configuration says (the same keys and defaults the service reads). */
export function healthListener(
  service: Service,
  env: Record<string, string | undefined>,
): { host: string; port: number } {
  const keys = listenerKeys[service];
  const host = configSchema.shape[keys.host].safeParse(env[keys.host]);
  const port = configSchema.shape[keys.port].safeParse(env[keys.port]);
  const problems = [
    ...(host.success ? [] : [`${keys.host}: ${host.error.issues[0]?.message}`]),
    ...(port.success ? [] : [`${keys.port}: ${port.error.issues[0]?.message}`]),
  ];
  if (!host.success || !port.success) throw new Error(`invalid configuration: ${problems.join('; ')}`);
  return { host: host.data, port: port.data };
}

/** The address to ask for a listener on `host`: loopback for a wildcard, else the host itself. */
export function healthHost(host: string): string {
  if (isIPv6(host)) {
    // URL writes an IPv6 address in its shortest form: every spelling of the wildcard becomes [::].
    return new URL(`http://[${host}]/`).hostname === '[::]' ? '::1' : host;
  }
  return host === '0.0.0.0' ? '127.0.0.1' : host;
}

/** http://<health host>:<port>/healthz, an IPv6 address in brackets. */
export function healthUrl(host: string, port: number): string {
  const asked = healthHost(host);
  return `http://${isIPv6(asked) ? `[${asked}]` : asked}:${port}/healthz`;
}

export async function healthcheck(
  service: Service | undefined,
  env: Record<string, string | undefined>,
): Promise<{ ok: boolean; detail: string }> {
  const which = service ?? serviceOfPid1();
  if (!which) return { ok: false, detail: 'cannot tell which service runs here: name it (bridge|workers)' };
  let listener: { host: string; port: number };
  try {
    listener = healthListener(which, env);
  } catch (error) {
    return { ok: false, detail: `${which}: ${(error as Error).message}` };
  }
  const { host, port } = listener;
  if (port === 0) return { ok: false, detail: `${which}: no HTTP listener configured (port 0)` };
  const url = healthUrl(host, port);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
    return { ok: res.status === 200, detail: `${which} /healthz on port ${port} (${url}): ${res.status}` };
  } catch (error) {
    return { ok: false, detail: `${which} /healthz on port ${port} (${url}): ${(error as Error).message}` };
  }
}
