/**
 * How to reach Temporal, for clients and workers alike: plain gRPC for a local or in-cluster
 * server; TLS with API-key auth when TEMPORAL_API_KEY is set (Temporal Cloud). The key is read
 * from the environment by name and goes nowhere else.
 */
export interface TemporalConnectionOptions {
  address: string;
  tls?: boolean;
  apiKey?: string;
}

export function temporalConnectionOptions(
  address: string,
  env: NodeJS.ProcessEnv = process.env,
): TemporalConnectionOptions {
  const apiKey = env.TEMPORAL_API_KEY;
  return apiKey ? { address, tls: true, apiKey } : { address };
}
