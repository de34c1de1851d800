/**
 * The operator commands of the `unicop` executable (bin/unicop.ts hands them their arguments):
 *   unicop root status <key>                       the root as NetBox holds it (plugin API)
 *   unicop root why <key> [--window 15m]          its latest run's cause chain; where its change waits now
 *   unicop root timeline <key> [--since] [--follow] its events on the log (Kafka)
 *   unicop tail [--root] [--type…] [--since] [--follow]
 *   unicop reconcile <key> [--reason]              through the admin API, with an Idempotency-Key
 *   unicop freeze|resume [<key>] --reason
 *   unicop sweep [--reason] [--wait SECONDS]
 *   unicop replay --from <time|offset> --root <key> --dry-run
 *   unicop status [--root KEY]                     which stage holds work now (core/status)
 *   unicop login | logout                          a person signs in to Keycloak (device flow), or out
 *   unicop approvals                               the runs waiting on an approval: AWX's or the blast-radius gate's
 *   unicop approve|deny <run> [--reason]           answer one, as you (admin API, role approver)
 *   unicop rollout list|show|resume|abort          gradual rollouts (admin API; decision 0061)
 * Every command takes --json. Exit 0 done, 1 failed (the message says why), 2 usage error.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ConfigError, configSources, loadConfig, type UnicopConfig } from '../../config.js';
import { rootKeySchema } from '../../events/catalogue.js';
import { runIdPattern } from '../../ids.js';
import { loadRuntimeConfig } from '../../secrets/runtime-config.js';
import { AdminClient, adminCredentials } from './admin-client.js';
import { decideApproval, listApprovals } from './approvals.js';
import { streamEvents } from './events.js';
import { login, logout } from './login.js';
import { CommandFailedError, createOutput, type Output, parseSince, UsageError } from './output.js';
import { override, reconcile, sweep } from './overrides.js';
import { parseFrom, replay, replayRefusal } from './replay.js';
import { decideRollout, listRollouts, showRollout } from './rollout.js';
import { showRootStatus } from './root-status.js';
import { showRootWhy } from './root-why.js';
import { showStatus } from './status.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

interface Context {
  values: Values;
  positionals: string[];
  out: Output;
  config: () => UnicopConfig;
  admin: () => AdminClient;
}

interface OperatorCommand {
  usage: string;
  summary: string;
  options: Options;
  /** Positional arguments after the command's name: [fewest, most]. */
  positionals: [number, number];
  run(ctx: Context): Promise<number>;
}

const json = { type: 'boolean' } as const;
const reason = { type: 'string' } as const;
const idempotencyKey = { type: 'string' } as const;
const since = { type: 'string' } as const;
const follow = { type: 'boolean' } as const;

function rootKeyArg(value: string | undefined, what = 'root key'): string {
  if (value === undefined || !rootKeySchema.safeParse(value).success) {
    throw new UsageError(`expected a ${what} like site/12 (<root-kind>/<anchor-id>), got '${value ?? ''}'`);
  }
  return value;
}

function text(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** Resolves when SIGINT or SIGTERM arrives: `--follow` stops there and exits 0. */
function untilSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

export const operatorCommands: Record<string, OperatorCommand> = {
  status: {
    usage: 'unicop status [--root KEY] [--json]',
    summary: "which stage holds work now: NetBox's queue, consumer lag, reconcile queue, the root, AWX",
    options: { json, root: { type: 'string' } },
    positionals: [0, 0],
    run: ({ values, out, config }) => {
      const root = text(values, 'root');
      return showStatus(config(), out, root === undefined ? null : rootKeyArg(root, '--root'));
    },
  },
  login: {
    usage: 'unicop login [--json]',
    summary: 'sign in to Keycloak as a person (device flow); the admin commands then act as you',
    options: { json },
    positionals: [0, 0],
    run: ({ config, out }) => login(config(), out),
  },
  logout: {
    usage: 'unicop logout [--json]',
    summary: "sign out: revoke the person's sign-in at Keycloak and delete the token file",
    options: { json },
    positionals: [0, 0],
    run: ({ config, out }) => logout(config(), out),
  },
  approvals: {
    usage: 'unicop approvals [--json]',
    summary: 'the runs waiting on an approval: AWX workflow approvals and blast-radius holds (admin API)',
    options: { json },
    positionals: [0, 0],
    run: ({ out, admin }) => listApprovals(admin(), out),
  },
  approve: {
    usage: 'unicop approve <run-id> [--reason TEXT] [--idempotency-key KEY] [--json]',
    summary:
      "approve a run's AWX approval or blast-radius hold as you (admin API, role approver; journaled and audited)",
    options: { json, reason, 'idempotency-key': idempotencyKey },
    positionals: [1, 1],
    run: (ctx) => decisionCommand(ctx, 'approve'),
  },
  deny: {
    usage: 'unicop deny <run-id> [--reason TEXT] [--idempotency-key KEY] [--json]',
    summary:
      "deny a run's AWX approval or blast-radius hold as you (admin API, role approver; journaled and audited)",
    options: { json, reason, 'idempotency-key': idempotencyKey },
    positionals: [1, 1],
    run: (ctx) => decisionCommand(ctx, 'deny'),
  },
  'rollout list': {
    usage: 'unicop rollout list [--state open|halted|aborted|done] [--json]',
    summary: 'the newest gradual rollouts: state, wave, roots per state (admin API)',
    options: { json, state: { type: 'string' } },
    positionals: [0, 0],
    run: ({ values, out, admin }) => listRollouts(admin(), out, text(values, 'state')),
  },
  'rollout show': {
    usage: 'unicop rollout show <id> [--json]',
    summary: "one rollout (id: the NetBox request id) with its roots' waves and states",
    options: { json },
    positionals: [1, 1],
    run: ({ positionals, out, admin }) => showRollout(admin(), out, positionals[0] ?? ''),
  },
  'rollout resume': {
    usage: 'unicop rollout resume <id> --reason TEXT [--idempotency-key KEY] [--json]',
    summary: 'a halted rollout opens its next wave (admin API, role operator; audited)',
    options: { json, reason, 'idempotency-key': idempotencyKey },
    positionals: [1, 1],
    run: (ctx) => rolloutDecision(ctx, 'resume'),
  },
  'rollout abort': {
    usage: 'unicop rollout abort <id> --reason TEXT [--idempotency-key KEY] [--json]',
    summary: 'abort a rollout: its held roots never launch for it (admin API, role operator; audited)',
    options: { json, reason, 'idempotency-key': idempotencyKey },
    positionals: [1, 1],
    run: (ctx) => rolloutDecision(ctx, 'abort'),
  },
  'root status': {
    usage: 'unicop root status <key> [--json]',
    summary: 'state, lease holder, last run, current vs reconciled hash (NetBox plugin)',
    options: { json },
    positionals: [1, 1],
    run: ({ positionals, out, config }) => showRootStatus(config(), out, rootKeyArg(positionals[0])),
  },
  'root why': {
    usage: 'unicop root why <key> [--window 15m] [--json]',
    summary:
      "its latest run's cause chain (NetBox change … runbook), and where its newest change is held now",
    options: { json, window: { type: 'string' } },
    positionals: [1, 1],
    run: ({ positionals, values, out, config }) => {
      const rootKey = rootKeyArg(positionals[0]);
      const window = text(values, 'window') ?? '15m';
      if (!/^\d+(s|m|h|d)$/.test(window)) {
        throw new UsageError(`--window: expected a duration (90s, 15m, 2h, 1d), got '${window}'`);
      }
      const windowMs = -parseSince(window, new Date(0), '--window').getTime();
      return showRootWhy({ config: config(), out, rootKey, windowMs });
    },
  },
  'root timeline': {
    usage: 'unicop root timeline <key> [--since 24h|TIME] [--follow] [--json]',
    summary: "the root's events on the log: changes, intents, audit, AWX, outcomes",
    options: { json, since, follow },
    positionals: [1, 1],
    run: async ({ positionals, values, out, config }) => {
      const rootKey = rootKeyArg(positionals[0]);
      await streamEvents({
        config: config(),
        out,
        since: parseSince(text(values, 'since') ?? '24h', new Date(), '--since'),
        rootKey,
        types: [],
        follow: values.follow === true,
        stop: values.follow === true ? untilSignal() : new AbortController().signal,
      });
      return 0;
    },
  },
  tail: {
    usage: 'unicop tail [--root KEY] [--type NAME]… [--since 10m|TIME] [--follow] [--json]',
    summary:
      'the event log; --type: intent, outcome, audit, change, … or an audit action (run. for a prefix)',
    options: { json, since, follow, root: { type: 'string' }, type: { type: 'string', multiple: true } },
    positionals: [0, 0],
    run: async ({ values, out, config }) => {
      const root = text(values, 'root');
      await streamEvents({
        config: config(),
        out,
        since: parseSince(text(values, 'since') ?? '10m', new Date(), '--since'),
        rootKey: root === undefined ? null : rootKeyArg(root, '--root'),
        types: (values.type as string[] | undefined) ?? [],
        follow: values.follow === true,
        stop: values.follow === true ? untilSignal() : new AbortController().signal,
      });
      return 0;
    },
  },
  reconcile: {
    usage: 'unicop reconcile <key> [--reason TEXT] [--idempotency-key KEY] [--json]',
    summary: 'reconcile a root now (admin API; an intent with cause manual)',
    options: { json, reason, 'idempotency-key': idempotencyKey },
    positionals: [1, 1],
    run: ({ positionals, values, out, admin }) =>
      reconcile(
        admin(),
        out,
        rootKeyArg(positionals[0]),
        text(values, 'reason'),
        text(values, 'idempotency-key'),
      ),
  },
  freeze: {
    usage: 'unicop freeze [<key>] --reason TEXT [--idempotency-key KEY] [--json]',
    summary: 'freeze one root, or automation globally without a key (admin API)',
    options: { json, reason, 'idempotency-key': idempotencyKey },
    positionals: [0, 1],
    run: (ctx) => overrideCommand(ctx, true),
  },
  resume: {
    usage: 'unicop resume [<key>] --reason TEXT [--idempotency-key KEY] [--json]',
    summary: 'resume one root (which gets an intent), or automation globally (admin API)',
    options: { json, reason, 'idempotency-key': idempotencyKey },
    positionals: [0, 1],
    run: (ctx) => overrideCommand(ctx, false),
  },
  sweep: {
    usage: 'unicop sweep [--reason TEXT] [--wait SECONDS] [--idempotency-key KEY] [--json]',
    summary: "ask the workers' sweeper for a sweep; waits up to --wait (60) s for its report",
    options: { json, reason, wait: { type: 'string' }, 'idempotency-key': idempotencyKey },
    positionals: [0, 0],
    run: ({ values, out, admin }) => {
      const wait = text(values, 'wait') ?? '60';
      if (!/^\d+$/.test(wait))
        throw new UsageError(`--wait: expected a whole number of seconds, got '${wait}'`);
      return sweep(admin(), out, {
        reason: text(values, 'reason'),
        waitSeconds: Number(wait),
        ...(text(values, 'idempotency-key') ? { key: text(values, 'idempotency-key') as string } : {}),
      });
    },
  },
  replay: {
    usage: 'unicop replay --from <TIME|2h|OFFSET|P:OFFSET,…> --root <key> --dry-run [--json]',
    summary: 'the intents the resolver would derive for a root now from unicop.changes (prints only)',
    options: { json, from: { type: 'string' }, root: { type: 'string' }, 'dry-run': { type: 'boolean' } },
    positionals: [0, 0],
    run: ({ values, out, config }) => {
      const fromText = text(values, 'from');
      if (!fromText) throw new UsageError('--from is required');
      const rootKey = rootKeyArg(text(values, 'root'), '--root');
      const from = parseFrom(fromText, new Date());
      if (values['dry-run'] !== true) throw new UsageError(replayRefusal);
      return replay({ config: config(), out, from, fromText, rootKey });
    },
  },
};

function decisionCommand(ctx: Context, decision: 'approve' | 'deny'): Promise<number> {
  const runId = ctx.positionals[0] ?? '';
  if (!runIdPattern.test(runId)) {
    throw new UsageError(`expected a run id (a UUID, as \`unicop approvals\` lists), got '${runId}'`);
  }
  const reasonText = text(ctx.values, 'reason');
  if (reasonText !== undefined && reasonText.trim().length < 3) {
    throw new UsageError('--reason: at least 3 characters');
  }
  return decideApproval(
    ctx.admin(),
    ctx.out,
    decision,
    runId,
    reasonText,
    text(ctx.values, 'idempotency-key'),
  );
}

function rolloutDecision(ctx: Context, decision: 'resume' | 'abort'): Promise<number> {
  const reasonText = text(ctx.values, 'reason');
  if (!reasonText || reasonText.trim().length < 3) {
    throw new UsageError('--reason is required (at least 3 characters): every decision is audited with it');
  }
  const id = ctx.positionals[0] ?? '';
  return decideRollout(ctx.admin(), ctx.out, decision, id, reasonText, text(ctx.values, 'idempotency-key'));
}

function overrideCommand(ctx: Context, frozen: boolean): Promise<number> {
  const reasonText = text(ctx.values, 'reason');
  if (!reasonText || reasonText.trim().length < 3) {
    throw new UsageError('--reason is required (at least 3 characters): every override is audited with it');
  }
  const key = ctx.positionals[0] === undefined ? undefined : rootKeyArg(ctx.positionals[0]);
  return override(ctx.admin(), ctx.out, frozen, key, reasonText, text(ctx.values, 'idempotency-key'));
}

/** The operator commands' lines for the executable's usage. */
export function operatorUsage(): string[] {
  return Object.entries(operatorCommands).map(([name, c]) => `  ${name.padEnd(15)}${c.summary}`);
}

/** The command an argument list names (`root status`, `tail`, …), or undefined. */
export function operatorCommandOf(argv: string[]): string | undefined {
  const [first, second] = argv;
  if (first === 'root' || first === 'rollout') return `${first} ${second ?? ''}`.trim();
  return first !== undefined && Object.hasOwn(operatorCommands, first) ? first : undefined;
}

/** Runs an operator command; resolves to the exit code. Writes its own errors to stderr. */
export async function runOperatorCommand(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const name = operatorCommandOf(argv) ?? '';
  const wantsJson = argv.includes('--json');
  const fail = (error: UsageError | CommandFailedError, usage?: string) => {
    if (wantsJson && error instanceof CommandFailedError) {
      process.stdout.write(`${JSON.stringify({ error: error.message, ...error.details })}\n`);
    }
    process.stderr.write(`unicop ${name}: ${error.message}\n${usage ? `usage: ${usage}\n` : ''}`);
    return error.exitCode;
  };
  const command = operatorCommands[name];
  if (!command) {
    const roots = Object.keys(operatorCommands).filter((n) => n.startsWith(`${argv[0]} `));
    if (argv[1] === '--help' || argv[1] === '-h') {
      process.stdout.write(`usage: ${roots.map((n) => operatorCommands[n]?.usage).join('\n       ')}\n`);
      return 0;
    }
    return fail(
      new UsageError(`expected one of: ${roots.join(', ')}`),
      roots.map((n) => operatorCommands[n]?.usage).join('\n       '),
    );
  }
  const args = argv.slice(name.split(' ').length);
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    return fail(new UsageError((error as Error).message), command.usage);
  }
  if (values.help) {
    process.stdout.write(`usage: ${command.usage}\n${command.summary}\n`);
    return 0;
  }
  const [fewest, most] = command.positionals;
  if (positionals.length < fewest || positionals.length > most) {
    return fail(
      new UsageError(
        `expected ${fewest === most ? fewest : `${fewest} to ${most}`} argument(s), got ${positionals.length}`,
      ),
      command.usage,
    );
  }
  let config: UnicopConfig | undefined;
  let vault: { close(): Promise<void> } | null = null;
  const loadedConfig = () => {
    config ??= loadConfig(env);
    return config;
  };
  const ctx: Context = {
    values,
    positionals,
    out: createOutput(values.json === true),
    config: loadedConfig,
    admin: () =>
      new AdminClient({
        baseUrl: loadedConfig().UNICOP_ADMIN_URL,
        credentials: adminCredentials(loadedConfig()),
      }),
  };
  try {
    // A vault: reference (the admin token, the OIDC client's secret) is read with the CLI's own
    // AppRole before the command runs (decision 0057); without one the configuration stays lazy.
    if (Object.values(configSources(env)).some((v) => typeof v === 'string' && v.startsWith('vault:'))) {
      const loaded = await loadRuntimeConfig('cli', env);
      config = loaded.config;
      vault = loaded.secrets;
    }
    return await command.run(ctx);
  } catch (error) {
    if (error instanceof UsageError) return fail(error, command.usage);
    if (error instanceof CommandFailedError) return fail(error);
    if (error instanceof ConfigError) return fail(new CommandFailedError(error.message));
    return fail(new CommandFailedError((error as Error).message ?? String(error)));
  } finally {
    await vault?.close();
  }
}
