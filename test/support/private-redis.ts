import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/** A redis-server of the caller's own on a free port (the shared one is never touched). */
export interface PrivateRedis {
  readonly url: string;
  /** Kills it with SIGKILL (as a crash would) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder. */
  restart(): Promise<void>;
}

/** Starts redis-server in `dir`; `persistent` fsyncs every write to its AOF, otherwise it keeps nothing across a restart. */
export async function startPrivateRedis(dir: string, persistent: boolean): Promise<PrivateRedis> {
  const port = await freePort();
  let child = await launch(port, dir, persistent);
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    async restart() {
      child = await launch(port, dir, persistent);
    },
  };
}

async function launch(port: number, dir: string, persistent: boolean): Promise<ChildProcess> {
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir],
    { stdio: 'ignore' },
  );
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}
