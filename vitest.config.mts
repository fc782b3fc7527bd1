import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Postgres and one Temporal dev server for the whole run (started here, see the file).
    globalSetup: './test/global-setup.ts',
    // The suite shares those servers and runs on 2-core machines: one file at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
