/**
 * Tower's layering, from the module table of DESIGN.md: each folder of src/
 * may import only the folders listed for it. `npm test` runs this.
 */
const folders = {
  lib: [],
  config: ['lib'],
  definitions: ['lib'],
  graph: ['lib'],
  db: ['lib'],
  sandbox: ['lib'],
  scheduler: ['graph', 'db', 'lib'],
  minions: ['scheduler', 'db', 'lib'],
  // Handlers may call domain modules; never the database directly.
  github: ['lib', 'definitions', 'graph', 'scheduler', 'minions', 'checks', 'autoland', 'clusters'],
  checks: ['graph', 'github', 'lib'],
  autoland: ['scheduler', 'github', 'lib'],
  clusters: ['scheduler', 'lib'],
  // Who may see and do what: sessions, API tokens, repository permissions, operator rights.
  access: ['github', 'db', 'lib'],
  // Domain modules only: never Octokit or drizzle directly.
  web: [
    'access',
    'lib',
    'config',
    'definitions',
    'graph',
    'scheduler',
    'minions',
    'github',
    'checks',
    'autoland',
    'clusters',
  ],
};

const forbidden = Object.entries(folders).map(([folder, allowed]) => ({
  name: `${folder}-imports`,
  comment: `src/${folder}/ may import only ${allowed.length ? allowed.join(', ') : 'itself'} (DESIGN.md, Modules)`,
  severity: 'error',
  from: { path: `^src/${folder}/` },
  to: {
    path: '^src/',
    pathNot: [`^src/${folder}/`, ...allowed.map((a) => `^src/${a}/`)],
  },
}));

module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: 'composition-root',
      comment: 'main.ts, cli.ts and src/cli/ are the composition root: nothing else imports them',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli\\.ts$', '^src/cli/'] },
      to: { path: '^src/(main\\.ts|cli\\.ts|cli/)' },
    },
    {
      name: 'drizzle-only-in-db',
      comment: 'Only src/db/ talks to drizzle and the database drivers',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/db/' },
      to: { path: 'node_modules/(drizzle-orm|postgres|@electric-sql/pglite)/' },
    },
    {
      name: 'octokit-only-in-github',
      comment:
        "Only src/github/, the composition root, and the simulator (GitHub's side of the wire) touch Octokit and Probot",
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/github/', '^src/(main|cli)\\.ts$', '^src/sandbox/'] },
      to: { path: 'node_modules/(@octokit|probot)/' },
    },
    {
      name: 'pure-modules-do-no-io',
      comment: 'definitions/ and graph/ are pure: no I/O modules',
      severity: 'error',
      from: { path: '^src/(definitions|graph)/' },
      to: {
        dependencyTypes: ['core'],
        path: '^(node:)?(fs|fs/promises|child_process|net|http|https|dgram|worker_threads)$',
      },
    },
    {
      name: 'no-circular',
      comment:
        'No import cycles at run time (a cycle through type-only imports is erased by the compiler)',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
