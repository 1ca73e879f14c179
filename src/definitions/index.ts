/**
 * `.tower/` definitions → graph specs. Pure: callers pass the files' contents.
 */
export { runGraphTests, type GraphTestResult } from './assertions.js';
export {
  formatDiagnostic,
  type Diagnostic,
  type Severity,
  type SourceFile,
} from './diagnostics.js';
export {
  buildGraph,
  buildGraphs,
  checkDefinitions,
  cronSchedules,
  definesFor,
  generateGraphs,
  MAX_GRAPH_JOBS,
  selectGraphs,
  type DefinitionsEvent,
} from './generate.js';
export {
  definitionsJsonSchema,
  graphTestsJsonSchema,
  DEFINITIONS_SCHEMA_ID,
  GRAPH_TESTS_SCHEMA_ID,
} from './json-schema.js';
export { landingFor, type LandingConfig } from './landing.js';
export {
  definitionLimitErrors,
  MAX_DEFINITION_FILE_BYTES,
  MAX_DEFINITION_FILES,
  MAX_DEFINITIONS_BYTES,
  type ListedFile,
} from './limits.js';
export { loadDefinitions } from './load.js';
export type { Definitions } from './model.js';
export { DEFINITIONS_VERSION } from './schema.js';
export { substitutionNames } from './substitute.js';
