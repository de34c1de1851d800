/**
 * Entry of the AWX objects-as-code bootstrap (core/awx/bootstrap.ts), run by scripts/stack.d/awx.sh
 * after the API is healthy. Everything comes from the environment; secrets by file, never printed:
 *   UNICOP_AWX_BOOTSTRAP_URL         AWX base URL
 *   UNICOP_AWX_ADMIN_PASSWORD_FILE   the `admin` superuser's password
 *   UNICOP_AWX_TOKEN_FILE            where the workers' API token is kept (reused while AWX accepts it)
 *   UNICOP_AWX_WEBHOOK_SECRET_FILE   the secret AWX's notifications carry to the bridge
 *   UNICOP_AWX_WEBHOOK_URL           the bridge's /webhooks/awx
 *   UNICOP_AWX_EE_IMAGE, UNICOP_AWX_TARGET_DIR, UNICOP_AWX_PROJECT_PATH
 *   UNICOP_AWX_FACTS_FILE            KEY=VALUE lines for var/stack.env are written here
 *   UNICOP_AWX_TEMPLATES_FILE        the template name → {type, id} map as JSON
 * bootstrapAwx also turns AWX's UI live updates off (a setting; decision 0063). Prints the template map (no secrets).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { bootstrapAwx } from '../core/awx/bootstrap.js';

function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function readSecret(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

function writePrivate(file: string, content: string) {
  writeFileSync(`${file}.tmp`, content, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

const tokenFile = need('UNICOP_AWX_TOKEN_FILE');
const webhookSecretFile = need('UNICOP_AWX_WEBHOOK_SECRET_FILE');
const result = await bootstrapAwx({
  baseUrl: need('UNICOP_AWX_BOOTSTRAP_URL'),
  username: 'admin',
  password: readSecret(need('UNICOP_AWX_ADMIN_PASSWORD_FILE')),
  eeImage: need('UNICOP_AWX_EE_IMAGE'),
  projectLocalPath: need('UNICOP_AWX_PROJECT_PATH'),
  targetDir: need('UNICOP_AWX_TARGET_DIR'),
  webhookUrl: need('UNICOP_AWX_WEBHOOK_URL'),
  webhookSecret: readSecret(webhookSecretFile),
  ...(existsSync(tokenFile) ? { existingToken: readSecret(tokenFile) } : {}),
});
if (result.newToken) writePrivate(tokenFile, `${result.newToken}\n`);

const templatesJson = JSON.stringify(result.templates);
writeFileSync(need('UNICOP_AWX_TEMPLATES_FILE'), `${JSON.stringify(result.templates, null, 2)}\n`);
writePrivate(
  need('UNICOP_AWX_FACTS_FILE'),
  [
    `UNICOP_AWX_REAL_TOKEN=file:${tokenFile}`,
    `UNICOP_AWX_REAL_WEBHOOK_SECRET=file:${webhookSecretFile}`,
    `UNICOP_AWX_VERSION=${result.version}`,
    `UNICOP_AWX_TEMPLATE_IDS=${templatesJson}`,
    '',
  ].join('\n'),
);
console.log(
  `AWX ${result.version}: organization ${result.organization}, inventory ${result.inventory}, project ${result.project}, ` +
    `execution environment ${result.executionEnvironment}, notification template ${result.notificationTemplate}; ` +
    `templates ${templatesJson}; token ${result.newToken ? 'created' : 'kept'}; UI live updates off`,
);
