/**
 * Checks real HTTP answers against an OpenAPI 3.1 document: the status must be documented for the
 * operation, and the body must validate against the documented schema for its content type.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, Record<string, unknown>> }>>;
  components?: { responses?: Record<string, Record<string, unknown>> };
};

export class OpenApiDocument {
  readonly doc: Doc;
  private readonly ajv: Ajv2020;

  constructor(file: string) {
    this.doc = parse(readFileSync(file, 'utf8')) as Doc;
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(this.ajv);
    this.ajv.addSchema({ ...this.doc, $id: 'doc' });
  }

  /** `METHOD /path/{param}` for every operation in the document. */
  operations(): string[] {
    return Object.entries(this.doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
  }

  /** Returns the problems with this answer; an empty list means it conforms. */
  check(method: string, path: string, status: number, contentType: string | null, body: unknown): string[] {
    const operation = this.doc.paths[path]?.[method.toLowerCase()];
    if (!operation) return [`${method} ${path} is not documented`];
    let response = operation.responses[String(status)];
    if (!response) return [`${method} ${path} does not document status ${status}`];
    const ref = response.$ref as string | undefined;
    if (ref) response = this.doc.components?.responses?.[ref.split('/').pop() as string] ?? {};
    const content = response.content as Record<string, { schema: unknown }> | undefined;
    if (!content) return [];
    const mediaType = (contentType ?? '').split(';')[0]?.trim() ?? '';
    const entry = Object.keys(content).find((k) => k === mediaType);
    if (!entry) return [`${method} ${path} ${status}: content type ${mediaType} not documented`];
    const pointer = `doc#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/${method.toLowerCase()}`;
    const schemaRef = ref
      ? `doc#/components/responses/${ref.split('/').pop()}/content/${entry.replaceAll('/', '~1')}/schema`
      : `${pointer}/responses/${status}/content/${entry.replaceAll('/', '~1')}/schema`;
    const validate = this.ajv.compile({ $ref: schemaRef });
    return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  }
}
