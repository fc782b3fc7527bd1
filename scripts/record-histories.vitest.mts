/**
 * vitest config for scripts/record-histories.ts alone, in the checkout it was copied into (see
 * scripts/record-histories.sh): that checkout's own global setup starts PostgreSQL and Temporal.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['scripts/record-histories.ts'],
    globalSetup: './test/global-setup.ts',
    // The scenarios run one after another and each takes a while on a 2-core machine.
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 180_000,
  },
});
