import net from 'node:net';

/** Resolves true when nothing listens on `host:port` (we could bind it ourselves). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * Fails with a message naming the service and the port, so "address in use" never surfaces as
 * a cryptic child-process crash half-way through starting the stack.
 */
export async function assertPortFree(port: number, what: string): Promise<void> {
  if (!(await isPortFree(port))) {
    throw new Error(
      `Port ${port} (${what}) is already in use on 127.0.0.1. Stop whatever listens there ` +
        `(\`ss -ltnp 'sport = :${port}'\` shows it) or choose another port.`,
    );
  }
}

/**
 * A port the kernel considers free right now. Racy by nature (someone may take it before we
 * do), which is acceptable for tests and local runs on one machine.
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not allocate a free port'))));
    });
  });
}
