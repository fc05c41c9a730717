// npm run lint: prettier, eslint and the import-layer check (layers.cjs), each over the whole tree.
// The tools live in this folder's own package (see its package.json for why); a fresh clone installs them on
// first use from the lockfile beside this script.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const bin = (name) => join(here, 'node_modules/.bin', name);
const run = (command, args, cwd = root) => execFileSync(command, args, { cwd, stdio: 'inherit' });

if (!existsSync(bin('eslint'))) {
  console.log('lint: installing the lint tools (tools/lint/package-lock.json)');
  run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], here);
}
const fix = process.argv.includes('--fix');
try {
  run(bin('prettier'), [fix ? '--write' : '--check', '--log-level=warn', '.']);
  run(bin('eslint'), ['--config', join(here, 'eslint.config.js'), ...(fix ? ['--fix'] : []), '.']);
  run(bin('depcruise'), [
    '--config',
    join(here, 'layers.cjs'),
    '--output-type',
    'err',
    'src',
    'flags',
    'verifier',
    'test',
    'bench',
    'examples',
  ]);
} catch {
  // The tool has printed what it found.
  process.exit(1);
}
