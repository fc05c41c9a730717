// The import layers, checked by dependency-cruiser in `npm test`. A module may import its own layer and the
// layers listed below it, never one above: the README's architecture section draws the same map.
const LAYERS = [
  ['domain', '^src/(domain|shared)/'],
  ['ports', '^src/ports/'],
  ['engines', '^src/(memory|postgres|sqlite)/'],
  ['stores', '^src/stores/'],
  ['dualwrite', '^src/dualwrite/'],
  ['flags', '^flags/'],
  ['verifier', '^verifier/'],
  ['runtime', '^src/runtime/'],
  ['surfaces', '^src/(api|cli)/|^src/[^/]+\\.ts$'],
  ['tools', '^(test|bench|examples|tools)/'],
];

const upward = LAYERS.slice(0, -1).map(([name, path], index) => ({
  name: `${name}-imports-upward`,
  comment: `${name} may import only ${LAYERS.slice(0, index + 1).map(([below]) => below).join(', ')}`,
  severity: 'error',
  from: { path },
  to: { path: LAYERS.slice(index + 1).map(([, above]) => `(${above})`).join('|') },
}));

const layer = (name) => LAYERS.findIndex(([each]) => each === name);

// flags/ stands above the dual-write core in the map yet needs nothing between: it works on the ports alone, and what
// it records goes out through one (FlagRecorder), so a flag source or the FlagState can be used without the rest.
const flagsOnPorts = {
  name: 'flags-imports-beyond-ports',
  comment: 'flags may import only flags, ports and domain',
  severity: 'error',
  from: { path: LAYERS[layer('flags')][1] },
  to: {
    path: LAYERS.slice(layer('ports') + 1, layer('flags'))
      .map(([, path]) => `(${path})`)
      .join('|'),
  },
};

// Within and beside the layers: what keeps a store, the engines and the test kit each in their own folder.
const folders = [
  {
    name: 'store-imports-other-store',
    comment: 'a store folder (src/stores/<store>/) builds on the engines and src/stores/*.ts, never on another store',
    severity: 'error',
    from: { path: '^src/stores/([^/]+)/' },
    to: { path: '^src/stores/[^/]+/', pathNot: '^src/stores/$1/' },
  },
  {
    name: 'generic-store-code-imports-a-store',
    comment: 'the generic StoreDefinition knows no store; only built-in-stores.ts lists them',
    severity: 'error',
    from: { path: '^src/stores/[^/]+\\.ts$', pathNot: '^src/stores/built-in-stores\\.ts$' },
    to: { path: '^src/stores/[^/]+/' },
  },
  {
    name: 'core-imports-a-store',
    comment: 'the dual-write core and the verifier serve any store from its definition, so adding a store edits neither',
    severity: 'error',
    from: { path: '^(src/dualwrite|verifier)/' },
    // The verifier loop runs as a background job, on the task scheduler.
    to: { path: '^src/stores/[^/]+/', pathNot: '^src/stores/task-scheduler/' },
  },
  {
    name: 'engine-imports-operations',
    comment: 'the PostgreSQL engine is what operations and the runtime state build on, not the other way round',
    severity: 'error',
    from: { path: '^src/postgres/[^/]+$' },
    to: { path: '^src/postgres/(operations|runtime-state)/' },
  },
  {
    name: 'bench-imports-tests',
    comment: 'benches share only the test kit (test/support) with the tests',
    severity: 'error',
    from: { path: '^bench/' },
    to: { path: '^test/', pathNot: '^test/support/' },
  },
  {
    name: 'kit-imports-tests',
    comment: 'the test kit (test/support) is what tests and benches import; it imports no test',
    severity: 'error',
    from: { path: '^test/support/' },
    to: { path: '^test/', pathNot: '^test/support/' },
  },
];

module.exports = {
  forbidden: [
    ...upward,
    flagsOnPorts,
    ...folders,
    { name: 'no-cycles', comment: 'modules import each other', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'verifier-imports-no-adapter',
      comment:
        'the verifier reaches both sides through ports and store definitions; of src/postgres it may name only the executor interface and the entity SQL the backfill copies with',
      severity: 'error',
      from: { path: '^verifier/' },
      to: { path: '^src/(memory|sqlite)/|^src/postgres/(?!(sql-executor|entity-sql)[.]ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
