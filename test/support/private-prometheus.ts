import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { freePort } from './free-port.js';

/** A prometheus server of the caller's own on a free port, its config and TSDB in a folder of the caller's. */
export interface PrivatePrometheus {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** The `data` of a successful HTTP API answer, e.g. api('/api/v1/query?query=up'); throws on any other. */
  api<T>(path: string): Promise<T>;
  /** Kills it with SIGKILL (its TSDB is thrown away) and waits for it to exit. */
  kill(): Promise<void>;
}

/** The prometheus binary on PATH, or undefined when it is not installed. */
export function findPrometheus(): string | undefined {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir) => join(dir, 'prometheus'))
    .find((path) => existsSync(path));
}

/**
 * Starts prometheus with `config` (an object; JSON is YAML, so it is written as it is) as
 * DIR/prometheus.yml and its TSDB in DIR/tsdb, and waits until /-/ready answers.
 */
export async function startPrivatePrometheus(dir: string, config: object): Promise<PrivatePrometheus> {
  const binary = findPrometheus();
  if (!binary) throw new Error('prometheus is not installed (apt-get install prometheus)');
  await mkdir(dir, { recursive: true });
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  // The end of its log, for the error when it does not start (a bad config or rule file says why there).
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => void (log = (log + chunk.toString()).slice(-4000)));
  child.on('error', (error) => void (log += `\n${error.message}`));
  const kill = () => killChild(child);

  try {
    await waitUntilReady(child, url);
  } catch (error) {
    await kill();
    throw new Error(`prometheus on port ${port} did not start: ${(error as Error).message}\n${log}`, { cause: error });
  }
  return {
    url,
    kill,
    async api<T>(path: string): Promise<T> {
      const answer = await fetch(url + path);
      const body = (await answer.json()) as { status: string; data?: T; error?: string };
      if (!answer.ok || body.status !== 'success')
        throw new Error(`prometheus ${path}: ${answer.status} ${body.error ?? ''}`);
      return body.data as T;
    },
  };
}

async function waitUntilReady(child: ChildProcess, url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (!running(child)) throw new Error(`it exited (${child.exitCode ?? child.signalCode ?? 'not started'})`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('/-/ready did not answer within 30 s');
}

/** SIGKILLs this child only (by its pid) and waits for its exit. */
async function killChild(child: ChildProcess): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

function running(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}
