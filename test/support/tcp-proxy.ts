import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy that tests can cut (the target looks down) and restore, without touching the target itself. */
export interface TcpProxy {
  /** The local port clients connect to. */
  readonly port: number;
  /** True between cut() and restore(). */
  readonly isCut: boolean;
  /** Destroys every open connection and refuses new ones (accepted, then reset at once). */
  cut(): void;
  /** Lets new connections through again. */
  restore(): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy on a random port of 127.0.0.1 that forwards to `target` (default the local PostgreSQL). */
export async function startTcpProxy(
  target: { host: string; port: number } = { host: '127.0.0.1', port: 5432 },
): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let cut = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A reset is how a cut looks; the other end of the pair sees it as a closed connection.
    socket.on('error', () => {});
  };

  const server: Server = createServer((client) => {
    track(client);
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(target);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no port');

  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  return {
    port: address.port,
    get isCut() {
      return cut;
    },
    cut() {
      cut = true;
      destroyAll();
    },
    restore() {
      cut = false;
    },
    async close() {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
