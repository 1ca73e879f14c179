/**
 * Tower's benchmarks: `npm run bench` runs every suite; `npm run bench -- graph`
 * (or `webhooks`, `scheduler`, `github`, `landing`) runs one. Figures are medians measured side by side in
 * one run; copy them into docs/performance.md with the date and machine.
 */
import { benchGraphGeneration } from './graph-generation.js';
import { githubSuite } from './github.js';
import { landingSuite } from './landing.js';
import { schedulerSuite } from './scheduler.js';
import { webhookSuite } from './webhooks.js';

const suites: Record<string, () => Promise<string> | string> = {
  graph: benchGraphGeneration,
  webhooks: webhookSuite,
  scheduler: schedulerSuite,
  github: githubSuite,
  landing: landingSuite,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in suites));
if (unknown.length > 0) {
  console.error(
    `Unknown suite(s): ${unknown.join(', ')}. Suites: ${Object.keys(suites).join(', ')}`,
  );
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  console.log(`\n## ${name}\n\n${await suites[name]!()}\n`);
}
