// config/schema.json for editors (yaml-language-server), generated from the one zod schema.
// `npm run schema` rewrites it; a test fails when it no longer matches the schema.
import { writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { configSchema } from './schema.ts';

/** The JSON Schema of the configuration file as written (durations as strings). */
export function buildJsonSchema(): Record<string, unknown> {
  // `io: 'input'` describes what a user writes; transforms and refinements that JSON Schema
  // cannot express become `{}` rather than an exception (`unrepresentable: 'any'`).
  const generated = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
  return {
    $schema: generated.$schema,
    $id: 'urn:icalpush:config',
    title: 'icalpush configuration',
    description:
      'Configuration of icalpush, the reverse-proxy sidecar that adds push to legacy iCalendar feeds. See proxy.example.yaml.',
    ...generated,
  };
}

/** The file text: 2-space JSON and a final newline. */
export function renderJsonSchema(): string {
  return `${JSON.stringify(buildJsonSchema(), null, 2)}\n`;
}

if (import.meta.main) {
  const target = new URL('../../config/schema.json', import.meta.url);
  await writeFile(target, renderJsonSchema());
  process.stdout.write(`wrote ${target.pathname}\n`);
}
