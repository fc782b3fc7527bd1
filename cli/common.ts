/** What every meteorctl command shares: connecting to the services, printing one JSON document. */
import { connect, resolveServices, type Clients } from '../client/connect';

export async function withClients<T>(fn: (c: Clients) => Promise<T>): Promise<T> {
  const clients = await connect(await resolveServices());
  try {
    return await fn(clients);
  } finally {
    await clients.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
