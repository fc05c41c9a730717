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

module.exports = {
  forbidden: [
    ...upward,
    flagsOnPorts,
    { name: 'no-cycles', comment: 'modules import each other', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
