// config/schema.json is generated from the zod schema; it must never fall behind it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { buildJsonSchema, renderJsonSchema } from '../../src/config/write-json-schema.ts';

const schemaPath = resolve(import.meta.dirname, '../../config/schema.json');

test('config/schema.json matches the zod schema', async () => {
  const text = await readFile(schemaPath, 'utf8');
  assert.deepEqual(
    JSON.parse(text),
    buildJsonSchema(),
    'config/schema.json is stale: run `npm run schema` and commit the result',
  );
  assert.equal(
    text,
    renderJsonSchema(),
    'config/schema.json is not formatted as `npm run schema` writes it',
  );
});

test('the JSON schema names itself and refuses unknown keys', () => {
  const schema = buildJsonSchema();
  assert.equal(schema.$id, 'urn:icalpush:config');
  assert.equal(schema.title, 'icalpush configuration');
  assert.equal(typeof schema.description, 'string');
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required, ['upstream', 'feeds']);
  const properties = schema.properties as Record<string, { additionalProperties?: unknown }>;
  assert.equal(properties.push?.additionalProperties, false);
});
