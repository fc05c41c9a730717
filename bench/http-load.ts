// The HTTP bench's load generator, in a process of its own so it does not share the
// server's event loop: `node --import tsx bench/http-load.ts '<LoadSettings as JSON>'`.
// Prints one LoadRound as a JSON line per round.
import autocannon from 'autocannon';
import type { HttpSeed, LoadRound, LoadSettings } from './http-workload.js';
import { seedContributorId, seedProject, seedTaskId } from './http-workload.js';
import { percentile } from './measure.js';

const JSON_HEADERS = { 'content-type': 'application/json' };

/**
 * The request mix every connection sends round and round: 8 reads of seeded records
 * (3 projects, 3 contributors, 2 tasks, keys drawn at random) and 2 writes with new
 * unique ids (a contributor and a task).
 */
function requestMix(seed: HttpSeed, runTag: string): autocannon.Request[] {
  let created = 0;
  const pick = (n: number) => Math.floor(Math.random() * n);
  const get = (path: () => string): autocannon.Request => ({
    method: 'GET',
    setupRequest: (request) => ({ ...request, path: path() }),
  });
  const post = (path: string, body: (n: number) => object): autocannon.Request => ({
    method: 'POST',
    path,
    headers: JSON_HEADERS,
    setupRequest: (request) => ({ ...request, body: JSON.stringify(body(created++)) }),
  });
  const project = get(() => {
    const { ecosystem, name } = seedProject(pick(seed.projects));
    return `/projects/${ecosystem}/${name}`;
  });
  const contributor = get(() => `/contributors/${seedContributorId(pick(seed.contributors))}`);
  const task = get(() => `/tasks/${seedTaskId(pick(seed.tasks))}`);
  return [
    project,
    contributor,
    task,
    project,
    post('/contributors', (n) => ({
      id: `${runTag}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
      name: `load contributor ${n}`,
    })),
    contributor,
    project,
    task,
    contributor,
    post('/tasks', (n) => ({
      id: `task_${runTag}_${n}`,
      direction: `load task ${n}`,
      taskType: 'impl',
      model: 'bench-model',
      command: 'run',
    })),
  ];
}

function round(settings: LoadSettings, seconds: number, requests: autocannon.Request[]): Promise<LoadRound> {
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: settings.url,
        connections: settings.connections,
        duration: seconds,
        timeout: 10,
        requests,
        ...(settings.overallRate > 0 ? { overallRate: settings.overallRate } : {}),
      },
      (error, result) => {
        if (error) return reject(error);
        resolve({
          responses: latencies.length,
          seconds: result.duration,
          perSecond: latencies.length / result.duration,
          p50Ms: percentile(latencies, 0.5),
          p95Ms: percentile(latencies, 0.95),
          p99Ms: percentile(latencies, 0.99),
          errors: result.errors,
          non2xx: result.non2xx,
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, ms) => void latencies.push(ms));
  });
}

const settings = JSON.parse(process.argv[2]!) as LoadSettings;
const requests = requestMix(settings.seed, settings.runTag);
if (settings.warmUpSeconds > 0) await round(settings, settings.warmUpSeconds, requests);
for (let i = 0; i < settings.rounds; i++)
  console.log(JSON.stringify(await round(settings, settings.seconds, requests)));
