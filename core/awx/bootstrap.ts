/**
 * AWX objects as code: makes a real AWX hold what UNICOP runs — organization, execution
 * environment, inventory, project, the job and workflow templates of the root catalogue, a webhook
 * notification template pointing at the bridge, and the API token the workers use; and AWX's UI
 * live updates off (a setting; decision 0063).
 *
 * Idempotent: every object is found by name and brought to the wanted fields (PATCH), or created.
 * Template ids are AWX's to choose; the result maps names to ids (docs/decisions/0024-real-awx.md).
 * Talks through openapi-fetch over the types generated from openapi/awx.yaml, like the client.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from '../../openapi/generated/awx.js';

type AwxObject = components['schemas']['AwxObject'];
type Body = components['schemas']['ObjectBody'];

/** One job template of the catalogue: a playbook of awx-playbooks/. */
export interface JobTemplateSpec {
  name: string;
  playbook: string;
  description: string;
}

/** One workflow of the catalogue: an approval gate, then a job template on approval. */
export interface WorkflowSpec {
  name: string;
  description: string;
  approval: { name: string; timeoutSeconds: number };
  /** Name of the job template that runs once approved. */
  onApproval: string;
}

/**
 * The root catalogue's templates, as test/awx-double/templates.example.yaml has them for the double
 * (ids 7, 8, 9 there): the same names, playbooks, prompts and approval gate.
 */
export const unicopJobTemplates: readonly JobTemplateSpec[] = [
  {
    name: 'unicop-prefix',
    playbook: 'prefix.yml',
    description: 'UNICOP reconciler for prefix roots (DNS zones)',
  },
  {
    name: 'unicop-site',
    playbook: 'site.yml',
    description: 'UNICOP reconciler for site roots (device inventory)',
  },
];
export const unicopWorkflows: readonly WorkflowSpec[] = [
  {
    name: 'unicop-site-with-approval',
    description: 'UNICOP: site reconciler behind an approval gate',
    approval: { name: 'Approve site change', timeoutSeconds: 3600 },
    onApproval: 'unicop-site',
  },
];

export interface BootstrapOptions {
  /** AWX base URL, without /api/v2. */
  baseUrl: string;
  /** A superuser's credentials (HTTP basic); never logged. */
  username: string;
  password: string;
  /** The execution environment image (already present in podman; registered with pull: never). */
  eeImage: string;
  /** Directory under AWX's PROJECTS_ROOT holding awx-playbooks/. */
  projectLocalPath: string;
  /** unicop_target_dir the templates give the playbooks (an absolute path visible to the jobs). */
  targetDir: string;
  /** Where AWX posts its notifications (the bridge's /webhooks/awx) and the secret it sends. */
  webhookUrl: string;
  webhookSecret: string;
  /** A token from an earlier bootstrap: kept if AWX still accepts it. */
  existingToken?: string;
  timeoutMs?: number;
}

export interface BootstrapResult {
  version: string;
  organization: number;
  executionEnvironment: number;
  inventory: number;
  project: number;
  notificationTemplate: number;
  /** Template ids by name, with their kind (the catalogue's `awx_template` shape). */
  templates: Record<string, { type: 'job' | 'workflow'; id: number }>;
  /** A new token (only when the existing one was missing or refused); the caller stores it. */
  newToken?: string;
}

export const tokenDescription = 'UNICOP workers (scripts/awx-bootstrap.ts)';
const organizationName = 'UNICOP';
const eeName = 'unicop-ee';
const inventoryName = 'unicop-local';
const projectName = 'unicop-playbooks';
export const notificationName = 'unicop-bridge';

export class AwxBootstrapError extends Error {
  override readonly name = 'AwxBootstrapError';
}

type Collection =
  | 'organizations'
  | 'inventories'
  | 'execution_environments'
  | 'projects'
  | 'job_templates'
  | 'workflow_job_templates'
  | 'notification_templates';

function describe(error: unknown): string {
  return JSON.stringify(error ?? 'no details').slice(0, 400);
}

export async function bootstrapAwx(options: BootstrapOptions): Promise<BootstrapResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const basic = Buffer.from(`${options.username}:${options.password}`).toString('base64');
  const base = options.baseUrl.replace(/\/+$/, '');
  const api: Client<paths> = createClient<paths>({
    baseUrl: base,
    fetch: (request) => {
      request.headers.set('authorization', `Basic ${basic}`);
      return globalThis.fetch(request, { signal: AbortSignal.timeout(timeoutMs) });
    },
  });

  const must = <T>(what: string, r: { data?: T; error?: unknown; response: Response }): T => {
    if (!r.response.ok || r.data === undefined) {
      throw new AwxBootstrapError(`${what}: AWX answered ${r.response.status}: ${describe(r.error)}`);
    }
    return r.data;
  };
  const mustNoBody = (what: string, r: { error?: unknown; response: Response }) => {
    if (!r.response.ok)
      throw new AwxBootstrapError(`${what}: AWX answered ${r.response.status}: ${describe(r.error)}`);
  };

  /** Finds the object of this collection by name and PATCHes it to `body`, or creates it. */
  async function ensure(collection: Collection, name: string, body: Body): Promise<AwxObject> {
    const page = must(
      `list ${collection}`,
      await api.GET(`/api/v2/${collection}/`, { params: { query: { name, page_size: 2 } } }),
    );
    const existing = page.results[0];
    const wanted = { ...body, name };
    if (existing) {
      return must(
        `update ${collection} ${name}`,
        await api.PATCH(`/api/v2/${collection}/{id}/`, {
          params: { path: { id: existing.id } },
          body: wanted,
        }),
      );
    }
    return must(`create ${collection} ${name}`, await api.POST(`/api/v2/${collection}/`, { body: wanted }));
  }

  const ping = must('ping', await api.GET('/api/v2/ping/'));

  const ee = await ensure('execution_environments', eeName, {
    image: options.eeImage,
    pull: 'never',
    description: 'UNICOP execution environment (scripts/stack.d/awx.sh builds it; never pulled)',
  });
  const org = await ensure('organizations', organizationName, {
    description: 'UNICOP reconcilers',
    default_environment: ee.id,
  });

  const inventory = await ensure('inventories', inventoryName, {
    organization: org.id,
    description: 'The job container itself (local connection inside the execution environment)',
  });
  const hostVars = JSON.stringify({
    ansible_connection: 'local',
    ansible_python_interpreter: '{{ ansible_playbook_python }}',
  });
  const hosts = must(
    'list hosts',
    await api.GET('/api/v2/inventories/{id}/hosts/', {
      params: { path: { id: inventory.id }, query: { name: 'localhost' } },
    }),
  );
  const host = hosts.results[0];
  if (host) {
    must(
      'update host localhost',
      await api.PATCH('/api/v2/hosts/{id}/', {
        params: { path: { id: host.id } },
        body: { variables: hostVars },
      }),
    );
  } else {
    must(
      'create host localhost',
      await api.POST('/api/v2/inventories/{id}/hosts/', {
        params: { path: { id: inventory.id } },
        body: { name: 'localhost', variables: hostVars },
      }),
    );
  }

  const project = await ensure('projects', projectName, {
    organization: org.id,
    scm_type: '',
    local_path: options.projectLocalPath,
    default_environment: ee.id,
    description: "UNICOP's reconcilers (awx-playbooks/ of the repository)",
  });

  const notification = await ensure('notification_templates', notificationName, {
    organization: org.id,
    notification_type: 'webhook',
    description: "UNICOP bridge's /webhooks/awx",
    notification_configuration: {
      url: options.webhookUrl,
      http_method: 'POST',
      disable_ssl_verification: false,
      username: 'awx',
      password: options.webhookSecret,
      headers: {},
    },
  });

  const templates: BootstrapResult['templates'] = {};
  const extraVars = JSON.stringify({ unicop_target_dir: options.targetDir });
  for (const spec of unicopJobTemplates) {
    const jt = await ensure('job_templates', spec.name, {
      description: spec.description,
      job_type: 'run',
      organization: org.id,
      inventory: inventory.id,
      project: project.id,
      playbook: spec.playbook,
      execution_environment: ee.id,
      extra_vars: extraVars,
      ask_variables_on_launch: true,
      ask_job_type_on_launch: true,
      // A policy `verify: {tags}` launches the template again with job_tags (docs/decisions/0066).
      ask_tags_on_launch: true,
      allow_simultaneous: true,
    });
    templates[spec.name] = { type: 'job', id: jt.id };
    await attachNotifications('job_templates', jt.id, ['started', 'success', 'error']);
  }

  for (const spec of unicopWorkflows) {
    const then = templates[spec.onApproval];
    if (!then)
      throw new AwxBootstrapError(
        `workflow ${spec.name}: no job template ${spec.onApproval} in the catalogue`,
      );
    const wf = await ensure('workflow_job_templates', spec.name, {
      description: spec.description,
      organization: org.id,
      ask_variables_on_launch: true,
      allow_simultaneous: true,
    });
    await ensureApprovalGraph(wf.id, spec, then.id);
    templates[spec.name] = { type: 'workflow', id: wf.id };
    await attachNotifications('workflow_job_templates', wf.id, ['started', 'success', 'error', 'approvals']);
  }

  // AWX's own cost per job (docs/decisions/0063): with live updates on, the callback receiver also
  // publishes every saved job event to the websocket channel layer (awx/main/models/events.py,
  // emit_event_detail). The stack runs no websocket server (awx.sh: uwsgi, dispatcher, callback
  // receiver, receptor) and UNICOP follows jobs through the API and AWX's notifications, so nobody
  // receives them. A database setting: applied at once, no restart.
  mustNoBody(
    'UI live updates off',
    await api.PATCH('/api/v2/settings/{category_slug}/', {
      params: { path: { category_slug: 'ui' } },
      body: { UI_LIVE_UPDATES_ENABLED: false },
    }),
  );

  const newToken = await ensureToken();

  return {
    version: ping.version,
    organization: org.id,
    executionEnvironment: ee.id,
    inventory: inventory.id,
    project: project.id,
    notificationTemplate: notification.id,
    templates,
    ...(newToken ? { newToken } : {}),
  };

  async function attachNotifications(
    collection: 'job_templates' | 'workflow_job_templates',
    id: number,
    events: ('started' | 'success' | 'error' | 'approvals')[],
  ) {
    for (const event of events) {
      const path =
        collection === 'job_templates'
          ? ('/api/v2/job_templates/{id}/notification_templates_{event}/' as const)
          : ('/api/v2/workflow_job_templates/{id}/notification_templates_{event}/' as const);
      const attached = must(
        `list ${event} notifications of ${collection} ${id}`,
        await api.GET(path, { params: { path: { id, event } } }),
      );
      if (attached.results.some((n) => n.id === notification.id)) continue;
      mustNoBody(
        `attach ${event} notification to ${collection} ${id}`,
        await api.POST(path, { params: { path: { id, event } }, body: { id: notification.id } }),
      );
    }
  }

  /** approval node --success--> job node; rebuilt when the template's nodes are anything else. */
  async function ensureApprovalGraph(wfId: number, spec: WorkflowSpec, jobTemplateId: number) {
    const nodes = must(
      `list nodes of workflow ${spec.name}`,
      await api.GET('/api/v2/workflow_job_templates/{id}/workflow_nodes/', {
        params: { path: { id: wfId }, query: { page_size: 200 } },
      }),
    ).results;
    const approval = nodes.find(
      (n) =>
        n.summary_fields?.unified_job_template?.unified_job_type === 'workflow_approval' &&
        n.summary_fields.unified_job_template.name === spec.approval.name &&
        n.summary_fields.unified_job_template.timeout === spec.approval.timeoutSeconds,
    );
    const job = nodes.find((n) => n.unified_job_template === jobTemplateId);
    const intact =
      nodes.length === 2 &&
      approval !== undefined &&
      job !== undefined &&
      approval.success_nodes.length === 1 &&
      approval.success_nodes[0] === job.id &&
      approval.failure_nodes.length === 0 &&
      approval.always_nodes.length === 0 &&
      job.success_nodes.length + job.failure_nodes.length + job.always_nodes.length === 0;
    if (intact) return;
    for (const n of nodes) {
      mustNoBody(
        `delete node ${n.id} of workflow ${spec.name}`,
        await api.DELETE('/api/v2/workflow_job_template_nodes/{id}/', { params: { path: { id: n.id } } }),
      );
    }
    const gate = must(
      `create approval node of ${spec.name}`,
      await api.POST('/api/v2/workflow_job_templates/{id}/workflow_nodes/', {
        params: { path: { id: wfId } },
        body: { identifier: 'approval' },
      }),
    );
    must(
      `make node ${gate.id} an approval`,
      await api.POST('/api/v2/workflow_job_template_nodes/{id}/create_approval_template/', {
        params: { path: { id: gate.id } },
        body: { name: spec.approval.name, timeout: spec.approval.timeoutSeconds },
      }),
    );
    const apply = must(
      `create job node of ${spec.name}`,
      await api.POST('/api/v2/workflow_job_templates/{id}/workflow_nodes/', {
        params: { path: { id: wfId } },
        body: { identifier: 'apply', unified_job_template: jobTemplateId },
      }),
    );
    mustNoBody(
      `link approval to job node in ${spec.name}`,
      await api.POST('/api/v2/workflow_job_template_nodes/{id}/success_nodes/', {
        params: { path: { id: gate.id } },
        body: { id: apply.id },
      }),
    );
  }

  /** Keeps the existing token if AWX accepts it; else replaces every token of this description. */
  async function ensureToken(): Promise<string | undefined> {
    if (options.existingToken) {
      const check = await globalThis.fetch(`${base}/api/v2/me/`, {
        headers: { authorization: `Bearer ${options.existingToken}` },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (check.ok) return undefined;
    }
    const me = must('me', await api.GET('/api/v2/me/')).results[0];
    if (!me) throw new AwxBootstrapError('me: AWX answered no user');
    const old = must(
      'list tokens',
      await api.GET('/api/v2/tokens/', {
        params: { query: { description: tokenDescription, page_size: 200 } },
      }),
    ).results;
    for (const t of old) {
      mustNoBody(
        `delete token ${t.id}`,
        await api.DELETE('/api/v2/tokens/{id}/', { params: { path: { id: t.id } } }),
      );
    }
    const created = must(
      'create token',
      await api.POST('/api/v2/users/{id}/personal_tokens/', {
        params: { path: { id: me.id } },
        body: { description: tokenDescription, scope: 'write' },
      }),
    );
    return created.token;
  }
}
