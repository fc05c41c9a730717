import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** A PostgreSQL cluster of the caller's own (pg_createcluster), on a free port: the shared server is never touched. */
export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust auth). */
  readonly url: string;
  /** SIGKILLs the postmaster and every backend of this cluster, as a machine crash would, and waits until none is left. */
  kill(): Promise<void>;
  /** Starts it again; PostgreSQL runs crash recovery from its WAL. */
  start(): Promise<void>;
  /** Stops and deletes the cluster. */
  drop(): Promise<void>;
}

/** Why a private cluster cannot be made here, or undefined when it can (Debian's postgresql-common, as root). */
export function privatePostgresUnavailable(): string | undefined {
  if (!existsSync('/usr/bin/pg_createcluster')) return 'pg_createcluster (postgresql-common) is not installed';
  if (process.getuid?.() !== 0) return 'creating a PostgreSQL cluster needs root';
  if (!existsSync('/etc/postgresql') || readdirSync('/etc/postgresql').length === 0)
    return 'no PostgreSQL version under /etc/postgresql';
  return undefined;
}

export async function startPrivatePostgres(prefix = 'dwfault'): Promise<PrivatePostgres> {
  const version = readdirSync('/etc/postgresql').sort().at(-1)!;
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const port = await freePort();
  await run('pg_createcluster', [version, name, '--port', String(port), '--', '--auth=trust']);
  const cluster = [version, name];
  const pidFile = `/var/lib/postgresql/${version}/${name}/postmaster.pid`;
  const start = async () => void (await run('pg_ctlcluster', [...cluster, 'start']));
  try {
    await start();
  } catch (error) {
    await run('pg_dropcluster', ['--stop', ...cluster]).catch(() => {});
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async kill() {
      const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      const { stdout } = await run('pgrep', ['-P', String(postmaster)]).catch(() => ({ stdout: '' }));
      const pids = [postmaster, ...stdout.split('\n').filter(Boolean).map(Number)];
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      for (let attempt = 0; attempt < 200 && pids.some(alive); attempt++)
        await new Promise((resolve) => setTimeout(resolve, 25));
    },
    start,
    async drop() {
      await run('pg_dropcluster', ['--stop', ...cluster]);
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
