/**
 * The AWX double's configuration: which job templates and workflow job templates exist, which
 * playbooks they run, who may call the API, and where notifications go. Read once from a JSON or
 * YAML file (YAML is a superset of JSON) and checked by one zod schema; a bad file stops the double
 * with the field's path. Paths are relative to the file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const notificationTarget = z.object({
  url: z.url(),
  // AWX webhook notification templates POST by default; PUT is the other choice AWX offers.
  http_method: z.enum(['POST', 'PUT']).default('POST'),
  headers: z.record(z.string(), z.string()).default({}),
});

// AWX attaches notification templates to a template per trigger: started, success, error.
const notificationTemplates = z
  .object({
    started: z.array(notificationTarget).default([]),
    success: z.array(notificationTarget).default([]),
    error: z.array(notificationTarget).default([]),
  })
  .default({ started: [], success: [], error: [] });

const variables = z.record(z.string(), z.unknown());

const jobTemplate = z.object({
  id: z.number().int().positive(),
  name: z.string().min(1),
  // Path of the playbook inside project_dir.
  playbook: z.string().min(1),
  // AWX's default job type is run; check runs ansible-playbook --check.
  job_type: z.enum(['run', 'check']).default('run'),
  extra_vars: variables.default({}),
  // AWX drops launch-time extra_vars unless the template prompts for them (listed in ignored_fields).
  ask_variables_on_launch: z.boolean().default(false),
  ask_job_type_on_launch: z.boolean().default(false),
  ask_limit_on_launch: z.boolean().default(false),
  // AWX's default: a second job of the template waits (pending) until the first one ends.
  allow_simultaneous: z.boolean().default(false),
  notification_templates: notificationTemplates,
});

const workflowNode = z
  .object({
    identifier: z.string().min(1),
    // Exactly one of: a job template to run, or an approval to wait for.
    job_template: z.number().int().positive().optional(),
    approval: z
      .object({
        name: z.string().min(1),
        description: z.string().default(''),
        // Seconds until the approval expires; 0 (AWX's default) never expires.
        timeout: z.number().int().min(0).default(0),
      })
      .optional(),
    success_nodes: z.array(z.string()).default([]),
    failure_nodes: z.array(z.string()).default([]),
    always_nodes: z.array(z.string()).default([]),
  })
  .refine((n) => (n.job_template === undefined) !== (n.approval === undefined), {
    message: 'a node has either job_template or approval',
  });

const workflowJobTemplate = z.object({
  id: z.number().int().positive(),
  name: z.string().min(1),
  extra_vars: variables.default({}),
  ask_variables_on_launch: z.boolean().default(false),
  allow_simultaneous: z.boolean().default(false),
  nodes: z.array(workflowNode).min(1),
  notification_templates: notificationTemplates,
});

export const doubleConfigSchema = z.object({
  // Directory holding the playbooks (the AWX project); relative to the config file.
  project_dir: z.string().min(1),
  auth: z.object({
    // OAuth2-style bearer tokens AWX would have issued.
    tokens: z.array(z.string().min(8)).default([]),
    users: z.array(z.object({ username: z.string().min(1), password: z.string().min(1) })).default([]),
  }),
  job_templates: z.array(jobTemplate).default([]),
  workflow_job_templates: z.array(workflowJobTemplate).default([]),
});

export type DoubleConfig = z.infer<typeof doubleConfigSchema>;
export type JobTemplateConfig = z.infer<typeof jobTemplate>;
export type WorkflowJobTemplateConfig = z.infer<typeof workflowJobTemplate>;
export type WorkflowNodeConfig = z.infer<typeof workflowNode>;
export type NotificationTemplates = z.infer<typeof notificationTemplates>;
export type NotificationTarget = z.infer<typeof notificationTarget>;

export class DoubleConfigError extends Error {
  override readonly name = 'DoubleConfigError';
}

/** Checks a configuration object; `baseDir` resolves project_dir. */
export function parseDoubleConfig(raw: unknown, baseDir = process.cwd()): DoubleConfig {
  const result = doubleConfigSchema.safeParse(raw);
  if (!result.success) {
    const fields = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new DoubleConfigError(`invalid AWX double configuration: ${fields.join('; ')}`);
  }
  const config = result.data;
  const ids = [...config.job_templates, ...config.workflow_job_templates].map((t) => t.id);
  if (new Set(ids).size !== ids.length) {
    throw new DoubleConfigError('invalid AWX double configuration: template ids must be unique');
  }
  for (const wf of config.workflow_job_templates) {
    const names = new Set(wf.nodes.map((n) => n.identifier));
    for (const node of wf.nodes) {
      for (const next of [...node.success_nodes, ...node.failure_nodes, ...node.always_nodes]) {
        if (!names.has(next)) {
          throw new DoubleConfigError(
            `workflow ${wf.name}: node ${node.identifier} links to unknown ${next}`,
          );
        }
      }
      if (node.job_template && !config.job_templates.some((t) => t.id === node.job_template)) {
        throw new DoubleConfigError(`workflow ${wf.name}: node ${node.identifier} uses unknown job template`);
      }
    }
  }
  // A relative target directory in a template's variables is relative to the file, like project_dir.
  for (const template of config.job_templates) {
    const target = template.extra_vars.unicop_target_dir;
    if (typeof target === 'string') template.extra_vars.unicop_target_dir = resolve(baseDir, target);
  }
  return { ...config, project_dir: resolve(baseDir, config.project_dir) };
}

/** Reads the configuration file (JSON or YAML). */
export function loadDoubleConfig(file: string): DoubleConfig {
  return parseDoubleConfig(parseYaml(readFileSync(file, 'utf8')), dirname(resolve(file)));
}
