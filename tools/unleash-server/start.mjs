// Starts a real unleash-server for dualwrite's integration tests.
// Env: UNLEASH_PORT, UNLEASH_DATABASE_URL, UNLEASH_ADMIN_TOKEN, UNLEASH_CLIENT_TOKEN, UNLEASH_ADMIN_PASSWORD, LOG_LEVEL.
// Tokens and the `admin` user are only created on a fresh database; later changes to them need a new database.
// Prints "unleash-server ready on http://127.0.0.1:PORT" once /health answers.
import pg from 'pg';
import { start } from 'unleash-server';

const port = Number(process.env.UNLEASH_PORT ?? 4242);
const databaseUrl = process.env.UNLEASH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/unleash';
const adminToken = process.env.UNLEASH_ADMIN_TOKEN ?? '*:*.dualwrite-admin-token';
const clientToken = process.env.UNLEASH_CLIENT_TOKEN ?? '*:development.dualwrite-client-token';
// Password of the UI/session user `admin`; feature import refuses admin API tokens and needs such a login.
const adminPassword = process.env.UNLEASH_ADMIN_PASSWORD ?? 'unleash4all';
const baseUrl = `http://127.0.0.1:${port}`;

// unleash-server reads these at config time; `telemetry: false` alone is ignored (it ORs with SEND_TELEMETRY).
process.env.SEND_TELEMETRY ??= 'false';
process.env.CHECK_VERSION ??= 'false';
// Silences pg's "client.query() while executing" deprecation warning raised inside unleash-server.
process.noDeprecation = true;

async function ensureDatabase(url) {
  const target = new URL(url);
  const database = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
      console.log(`created database ${database}`);
    }
  } finally {
    await client.end();
  }
}

async function waitForHealth(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseUrl}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`unleash-server /health did not answer within ${timeoutMs} ms`);
}

let unleash;
let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`unleash-server stopping (${signal})`);
  try {
    await unleash?.stop();
    process.exit(0);
  } catch (err) {
    console.error('unleash-server failed to stop cleanly', err);
    process.exit(1);
  }
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => void shutdown(signal));

try {
  await ensureDatabase(databaseUrl);
  unleash = await start({
    databaseUrl,
    db: { ssl: false }, // unleash otherwise defaults to TLS (rejectUnauthorized: false), which local PostgreSQL refuses
    server: { host: '127.0.0.1', port, gracefulShutdownEnable: false },
    logLevel: process.env.LOG_LEVEL ?? 'warn',
    versionCheck: { enable: false },
    telemetry: false,
    authentication: {
      initialAdminUser: { username: 'admin', password: adminPassword },
      initApiTokens: [
        { tokenName: 'dualwrite-admin', type: 'admin', environment: '*', projects: ['*'], secret: adminToken },
        {
          tokenName: 'dualwrite-client',
          type: 'backend',
          environment: 'development',
          projects: ['*'],
          secret: clientToken,
        },
      ],
    },
  });
  await waitForHealth(30_000);
  console.log(`unleash-server ready on ${baseUrl}`);
} catch (err) {
  console.error('unleash-server failed to start', err);
  await unleash?.stop().catch(() => {});
  process.exit(1);
}
