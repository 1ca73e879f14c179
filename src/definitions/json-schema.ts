/**
 * JSON Schemas for editors (yaml-language-server), generated from the same
 * zod schemas that check the files, so the two cannot drift apart.
 */
import { z } from 'zod';
import { DefinitionsFileSchema, GraphTestsFileSchema } from './schema.js';

export const DEFINITIONS_SCHEMA_ID = 'urn:tower:schema:definitions:v1';
export const GRAPH_TESTS_SCHEMA_ID = 'urn:tower:schema:graph-tests:v1';

function jsonSchema(
  schema: z.ZodType,
  id: string,
  title: string,
  description: string,
): Record<string, unknown> {
  // io: 'input' describes what people write (before defaults), which is what an editor checks.
  const { $schema, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' });
  return { $schema, $id: id, title, description, ...rest };
}

/** The JSON Schema (draft 2020-12) of `.tower/*.yml` and `.tower/branches/*.yml`. */
export function definitionsJsonSchema(): Record<string, unknown> {
  return jsonSchema(
    DefinitionsFileSchema,
    DEFINITIONS_SCHEMA_ID,
    'Tower definitions, version 1',
    'Which events build which graphs of jobs. See docs/definitions.md.',
  );
}

/** The JSON Schema (draft 2020-12) of graph assertion files, `.tower/tests/*.yml`. */
export function graphTestsJsonSchema(): Record<string, unknown> {
  return jsonSchema(
    GraphTestsFileSchema,
    GRAPH_TESTS_SCHEMA_ID,
    'Tower graph tests, version 1',
    'Assertions about the graphs that events build. See docs/definitions.md.',
  );
}
