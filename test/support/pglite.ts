import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgliteExecutor } from '../../src/postgres/pglite-executor.js';

/*
 * A new PGlite runs initdb, several seconds of CPU each, and a run opens dozens: they are
 * most of the PGlite tests' time. Instead, the global setup (vitest.config.ts) builds one
 * migrated database per run, and each test opens a copy of its data directory.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's folder: the migrated database in `template`, and the copies beside it. */
    pgliteFolder: string;
  }
}

/** Global setup: builds the template; the teardown it returns removes it and any copy left open. */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  // In memory (tmpfs) where there is one: the copies are written as the tests run.
  const folder = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'dw-pglite-'));
  const db = await PgliteExecutor.open({ dataDir: join(folder, 'template') });
  await migrate(db, await loadMigrations());
  await db.close();
  project.provide('pgliteFolder', folder);
  return () => rm(folder, { recursive: true, force: true });
}

/**
 * A PGlite database migrated to the latest schema, of its own: a copy of the run's template
 * (outside vitest, as in the benches, a new one). Closing it removes the copy.
 */
export async function openPglite(): Promise<PgliteExecutor> {
  const folder = templateFolder();
  if (!folder) {
    const db = await PgliteExecutor.open();
    await migrate(db, await loadMigrations());
    return db;
  }
  const dataDir = await mkdtemp(join(folder, 'copy-'));
  await cp(join(folder, 'template'), dataDir, { recursive: true });
  const db = await PgliteExecutor.open({ dataDir });
  const close = db.close.bind(db);
  db.close = async () => {
    await close();
    await rm(dataDir, { recursive: true, force: true });
  };
  return db;
}

/** The run's template folder; undefined outside a vitest worker (a bench, even one a test started, which inherits VITEST). */
function templateFolder(): string | undefined {
  try {
    return inject('pgliteFolder');
  } catch {
    return undefined;
  }
}
