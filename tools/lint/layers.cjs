// The import layers, checked by dependency-cruiser in `npm test`. A module may import its own layer and the
// layers listed below it, never one above: the README's architecture section draws the same map.
const LAYERS = [
  ['domain', '^src/(domain|shared)/'],
  ['ports', '^src/ports/'],
  ['engines', '^src/(memory|postgres|sqlite)/'],
  ['stores', '^src/(stores|scheduler)/'],
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

module.exports = {
  forbidden: [
    ...upward,
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
