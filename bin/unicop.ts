#!/usr/bin/env node
/**
 * The one `unicop` executable (package.json `bin`, compiled to dist/bin/unicop.js):
 *   unicop bridge     the HTTP ingress (bridge/main.ts)
 *   unicop workers    resolver, dispatcher, reconciler and sweeper in one process (workers/main.ts)
 *   unicop --help     this usage; an unknown command prints it and exits 2
 * Each service reads its configuration from the environment (core/config.ts) exactly as when its
 * main module is run directly; this file only chooses which one to load.
 */
import { parseArgs } from 'node:util';

const commands = {
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
  'usage: unicop <command> [--help]',
  '',
  'commands:',
  ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`),
  '',
  'Configuration comes from the environment (UNICOP_* variables, see the README); secrets are',
  'references: env:NAME or file:/path.',
].join('\n');

function main(argv: string[]): number | undefined {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`unicop: ${(error as Error).message}\n${usage}\n`);
    return 2;
  }
  const [name, ...rest] = parsed.positionals;
  if (parsed.values.help && name === undefined) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (name === undefined) {
    process.stderr.write(`unicop: no command given\n${usage}\n`);
    return 2;
  }
  if (!Object.hasOwn(commands, name)) {
    process.stderr.write(`unicop: unknown command '${name}'\n${usage}\n`);
    return 2;
  }
  const command = commands[name as keyof typeof commands];
  if (parsed.values.help) {
    process.stdout.write(`unicop ${name}: ${command.summary}\n`);
    return 0;
  }
  if (rest.length > 0) {
    process.stderr.write(`unicop ${name}: unexpected argument '${rest[0]}'\n${usage}\n`);
    return 2;
  }
  // The service's main module starts itself on import and owns the process from here on.
  void command.load();
  return undefined;
}

const code = main(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
