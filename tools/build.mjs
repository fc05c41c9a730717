// npm run build: compiles src/, flags/ and verifier/ to dist/ (ESM and .d.ts) and copies
// what the built code reads at run time: the schema migrations (loaded from ../../schema
// relative to dist/src/postgres) and the status page's browser files (served as they are
// from beside dist/src/api/status-assets.js). Plain Node, so it runs wherever npm does.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  { stdio: 'inherit' },
);
mkdirSync(join(dist, 'schema'));
for (const file of readdirSync(join(root, 'schema')).filter((name) => name.endsWith('.sql')))
  copyFileSync(join(root, 'schema', file), join(dist, 'schema', file));
// The dispatch app's SQLite schema, read by the dispatch store (src/stores/dispatch) from ../../../schema/sqlite.
mkdirSync(join(dist, 'schema/sqlite'));
for (const file of readdirSync(join(root, 'schema/sqlite')))
  copyFileSync(join(root, 'schema/sqlite', file), join(dist, 'schema/sqlite', file));
const statusPage = 'src/api/status-page';
mkdirSync(join(dist, statusPage), { recursive: true });
for (const file of readdirSync(join(root, statusPage)))
  copyFileSync(join(root, statusPage, file), join(dist, statusPage, file));
// The standard test snapshot of `dualwrite db reset-test`, found at ../../../fixtures from the built command.
mkdirSync(join(dist, 'fixtures'));
for (const file of ['sample.dump', 'metadata.json'])
  copyFileSync(join(root, 'fixtures', file), join(dist, 'fixtures', file));
chmodSync(join(dist, 'src/cli/main.js'), 0o755);
console.log(`built ${dist}`);
