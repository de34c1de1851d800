#!/usr/bin/env node
/**
 * The one `unicop` executable (package.json `bin`, compiled to dist/bin/unicop.js):
 *   unicop bridge [--wait SECONDS]    the HTTP ingress (bridge/main.ts)
 *   unicop workers [--wait SECONDS]   resolver, dispatcher, reconciler and sweeper (workers/main.ts)
 *   unicop healthcheck [SERVICE]      exit 0 if that service's /healthz answers (the images' HEALTHCHECK)
 *   unicop root status|timeline, tail, reconcile, freeze, resume, sweep, replay
 *                                     the operator commands (core/cli/commands/), each with --json
 *   unicop --help                     the usage; an unknown command prints it and exits 2
 * Each service reads its configuration from the environment (core/config.ts) exactly as when its
 * main module is run directly; this file only chooses which one to load. --wait first waits up to
 * SECONDS for what the service needs (core/cli/dependencies.ts) — for containers started together.
 */
import { parseArgs } from 'node:util';
import { operatorCommandOf, operatorUsage, runOperatorCommand } from '../core/cli/commands/index.js';
import {
  DependencyTimeoutError,
  probesFor,
  type Service,
  waitForDependencies,
} from '../core/cli/dependencies.js';
import { healthcheck } from '../core/cli/healthcheck.js';
import { ConfigError, loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';

const services = {
  bridge: {
    summary: 'NetBox webhooks and AWX notifications → Kafka; admin API, /healthz, /readyz, /metrics',
    load: () => import('../bridge/main.js'),
  },
  workers: {
    summary: 'resolver, dispatcher, reconciler (BullMQ worker) and sweeper in one process',
    load: () => import('../workers/main.js'),
  },
} as const;

const usage = [
  'usage: unicop <command> [options]',
  '',
  'commands:',
  ...Object.entries(services).map(([name, c]) => `  ${name.padEnd(13)}${c.summary}`),
  `  ${'healthcheck'.padEnd(13)}exit 0 if the service's /healthz answers (bridge|workers; default: this container's)`,
  '',
  'operator commands (--json on each; `unicop <command> --help` for its options):',
  ...operatorUsage(),
  '',
  'options:',
  '  --wait SECONDS  (bridge, workers) first wait up to SECONDS for Kafka and its topics, Redis',
  '                  and (workers) NetBox with the plugin; exit 1 naming what is still missing',
  '  -h, --help      this text',
  '',
  'Configuration comes from the environment (UNICOP_* variables, see the README); secrets are',
  'references: env:NAME or file:/path.',
].join('\n');

function usageError(message: string): number {
  process.stderr.write(`unicop: ${message}\n${usage}\n`);
  return 2;
}

async function startService(name: Service, waitSeconds: number | undefined): Promise<number | undefined> {
  if (waitSeconds !== undefined) {
    try {
      const config = loadConfig();
      const log = createLogger(name, config.UNICOP_LOG_LEVEL);
      await waitForDependencies(probesFor(name, config), waitSeconds, log, {
        intervalMs: config.UNICOP_DEPENDENCY_PROBE_INTERVAL_MS,
      });
    } catch (error) {
      const known = error instanceof ConfigError || error instanceof DependencyTimeoutError;
      process.stderr.write(`${name} failed to start: ${known ? (error as Error).message : String(error)}\n`);
      return 1;
    }
  }
  // The service's main module starts itself on import and owns the process from here on.
  await services[name].load();
  return undefined;
}

async function main(argv: string[]): Promise<number | undefined> {
  if (operatorCommandOf(argv) !== undefined || argv[0] === 'root') return runOperatorCommand(argv);
  let parsed: ReturnType<
    typeof parseArgs<{
      options: { help: { type: 'boolean'; short: 'h' }; wait: { type: 'string' } };
      allowPositionals: true;
    }>
  >;
  try {
    parsed = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, wait: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageError((error as Error).message);
  }
  const [name, ...rest] = parsed.positionals;
  const { help, wait } = parsed.values;
  if (name === undefined) {
    if (help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    return usageError('no command given');
  }
  if (name === 'healthcheck') {
    if (help) {
      process.stdout.write('unicop healthcheck [bridge|workers]: exit 0 if its /healthz answers 200\n');
      return 0;
    }
    const target = rest[0];
    if (rest.length > 1 || (target !== undefined && target !== 'bridge' && target !== 'workers')) {
      return usageError(`healthcheck: expected bridge or workers, got '${rest.join(' ')}'`);
    }
    const result = await healthcheck(target, process.env);
    (result.ok ? process.stdout : process.stderr).write(`${result.detail}\n`);
    return result.ok ? 0 : 1;
  }
  if (!Object.hasOwn(services, name)) return usageError(`unknown command '${name}'`);
  const service = name as Service;
  if (help) {
    process.stdout.write(`unicop ${service} [--wait SECONDS]: ${services[service].summary}\n`);
    return 0;
  }
  if (rest.length > 0) return usageError(`${service}: unexpected argument '${rest[0]}'`);
  let waitSeconds: number | undefined;
  if (wait !== undefined) {
    waitSeconds = Number(wait);
    if (!Number.isInteger(waitSeconds) || waitSeconds < 0) {
      return usageError(`--wait: expected a whole number of seconds, got '${wait}'`);
    }
  }
  return startService(service, waitSeconds);
}

void main(process.argv.slice(2)).then((code) => {
  if (code !== undefined) process.exitCode = code;
});
