/**
 * Runs the AWX API double as a process:
 *   npx tsx test/awx-double/main.ts --config FILE --port N --state-dir DIR [--ansible-bin DIR] [--step-ms N]
 * --ansible-bin defaults to the stack's UNICOP_ANSIBLE_BIN (var/stack.env). UNICOP_AWX_DOUBLE_TOKEN,
 * when set, is accepted as a bearer token in addition to the file's (so no token has to be written
 * into a committed file). UNICOP_AWX_DOUBLE_NOTIFY_URL (+ UNICOP_AWX_DOUBLE_NOTIFY_TOKEN, sent as
 * X-UNICOP-Token) adds a webhook notification on started/success/error to every template, as an
 * AWX admin would attach one pointing at the bridge. A relative unicop_target_dir in a template's extra_vars is resolved
 * against the config file's directory. Prints one line
 * "awx-double listening on <url>" when ready; stops its playbooks and exits on SIGTERM/SIGINT.
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readStackEnv } from '../../core/config.js';
import { loadDoubleConfig } from './config.js';
import { startAwxDouble } from './server.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'state-dir': { type: 'string' },
    'ansible-bin': { type: 'string' },
    'step-ms': { type: 'string' },
  },
});

const ansibleBin =
  values['ansible-bin'] ?? process.env.UNICOP_ANSIBLE_BIN ?? readStackEnv().UNICOP_ANSIBLE_BIN;
if (!values.config || !values['state-dir'] || !ansibleBin) {
  console.error(
    'usage: main.ts --config FILE --state-dir DIR [--port N] [--host H] [--ansible-bin DIR] [--step-ms N]\n' +
      '(--ansible-bin defaults to UNICOP_ANSIBLE_BIN from var/stack.env: run scripts/stack up ansible)',
  );
  process.exit(2);
}
mkdirSync(values['state-dir'], { recursive: true });
const config = loadDoubleConfig(values.config);
const extraToken = process.env.UNICOP_AWX_DOUBLE_TOKEN;
if (extraToken) config.auth.tokens.push(extraToken);
const notifyUrl = process.env.UNICOP_AWX_DOUBLE_NOTIFY_URL;
if (notifyUrl) {
  const notifyToken = process.env.UNICOP_AWX_DOUBLE_NOTIFY_TOKEN;
  const target = {
    url: notifyUrl,
    http_method: 'POST' as const,
    headers: (notifyToken ? { 'X-UNICOP-Token': notifyToken } : {}) as Record<string, string>,
  };
  for (const template of [...config.job_templates, ...config.workflow_job_templates]) {
    template.notification_templates = { started: [target], success: [target], error: [target] };
  }
}

// Handlers first, so a stop request that comes right after start-up is never missed.
const started = startAwxDouble({
  config,
  stateDir: values['state-dir'],
  ansibleBin,
  port: Number(values.port),
  host: values.host,
  ...(values['step-ms'] ? { stepMs: Number(values['step-ms']) } : {}),
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void started.then((double) => double.close()).then(() => process.exit(0));
  });
}
console.log(`awx-double listening on ${(await started).url}`);
