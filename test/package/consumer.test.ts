import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve('.');

/**
 * dualwrite as a stranger gets it: `npm pack`, the tarball installed into a fresh project
 * of its own, and from there the README's embedding example (examples/embed.ts) type-checked
 * against the published .d.ts, compiled and run on embedded PGlite, and the CLI run with npx.
 */
describe('the published package, installed into a new project', () => {
  let project: string;
  let tarball: string;

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'dw-consumer-'));
    // prepack builds dist/ first.
    const { stdout } = await run('npm', ['pack', '--pack-destination', project, '--silent'], {
      cwd: REPO,
      maxBuffer: 16 * 1024 * 1024,
    });
    tarball = join(project, stdout.trim().split('\n').at(-1)!);
    const app = join(project, 'app');
    await mkdir(app);
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify(
        { name: 'consumer-api', private: true, type: 'module', dependencies: { dualwrite: `file:${tarball}` } },
        null,
        2,
      ),
    );
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      cwd: app,
      maxBuffer: 16 * 1024 * 1024,
    });
  }, 300_000);

  afterAll(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  const app = () => join(project, 'app');

  it('ships the built code, its declarations and the schema migrations, and nothing of the tests or benches', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    expect(files).toContain('package/dist/src/index.js');
    expect(files).toContain('package/dist/src/index.d.ts');
    expect(files).toContain('package/dist/src/cli/main.js');
    const migrations = (await readdir(join(REPO, 'schema'))).filter((name) => name.endsWith('.sql'));
    for (const migration of migrations) expect(files).toContain(`package/dist/schema/${migration}`);
    expect(files).toContain('package/dist/fixtures/sample.dump');
    expect(files).toContain('package/schema/roles/least-privilege.sql');
    expect(
      files.filter(
        (file) => /^package\/(test|bench|src|tools)\//.test(file) || (file.endsWith('.ts') && !file.endsWith('.d.ts')),
      ),
    ).toEqual([]);
  });

  it('type-checks the README example against the published declarations, compiles it and runs it on embedded PGlite', async () => {
    const example = await readFile(join(REPO, 'examples/embed.ts'), 'utf8');
    expect(await readFile(join(REPO, 'README.md'), 'utf8')).toContain(example.trim());
    await copyFile(join(REPO, 'examples/embed.ts'), join(app(), 'embed.ts'));
    await writeFile(
      join(app(), 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: true,
          outDir: 'out',
          typeRoots: [join(REPO, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['embed.ts'],
      }),
    );
    await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', app()]);
    const { stdout } = await run(process.execPath, ['out/embed.js'], {
      cwd: app(),
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(stdout).toContain('the sides are equal');
    expect(stdout).toContain('react in PostgreSQL: UI library');
  }, 120_000);

  it('exposes only its public entry point: a deep import is refused', async () => {
    const deep = run(
      process.execPath,
      ['--input-type=module', '-e', "await import('dualwrite/dist/src/stores/graph/memory-graph-store.js')"],
      { cwd: app() },
    );
    await expect(deep).rejects.toMatchObject({ stderr: expect.stringContaining('ERR_PACKAGE_PATH_NOT_EXPORTED') });
  });

  it('runs the CLI with plain node through npx', async () => {
    const help = await run('npx', ['--no-install', 'dualwrite', '--help'], { cwd: app() });
    expect(help.stdout).toContain('Usage: dualwrite [options] [command]');
    const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect((await run('npx', ['--no-install', 'dualwrite', '--version'], { cwd: app() })).stdout.trim()).toBe(version);
  });
});
