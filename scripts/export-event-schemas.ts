/** Writes the event catalogue's JSON Schemas to docs/events/ and docs/events.md (`npm run events:export`). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../core/config.js';
import { eventCatalogueMarkdown } from '../core/events/catalogue-doc.js';
import { eventJsonSchemas } from '../core/events/json-schema.js';

const dir = join(repoRoot, 'docs', 'events');
mkdirSync(dir, { recursive: true });
for (const [file, schema] of Object.entries(eventJsonSchemas())) {
  writeFileSync(join(dir, file), `${JSON.stringify(schema, null, 2)}\n`);
  process.stdout.write(`wrote docs/events/${file}\n`);
}

writeFileSync(join(repoRoot, 'docs', 'events.md'), eventCatalogueMarkdown());
process.stdout.write('wrote docs/events.md\n');
