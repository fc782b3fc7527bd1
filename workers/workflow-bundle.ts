/**
 * Bundling the workflow code for the worker's sandbox, in a child process: webpack's working set
 * (a couple of hundred MiB) is then the child's and goes with it, instead of staying in the
 * worker's resident memory for the life of the process. The bundle (code and source map) comes
 * back as JSON on the child's stdout.
 */
import { spawn } from 'node:child_process';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';

/** Run by `node -e` in the child: only plain Node and the SDK's bundler, resolved by the parent. */
const CHILD_SCRIPT = `
const { bundleWorkflowCode } = require(process.env.METEOR_TEMPORAL_WORKER_MODULE);
const quiet = () => undefined;
const logger = { log: quiet, trace: quiet, debug: quiet, info: quiet,
  warn: (m) => console.error(m), error: (m) => console.error(m) };
bundleWorkflowCode({ workflowsPath: process.env.METEOR_WORKFLOWS_PATH, logger }).then(
  (b) => process.stdout.write(JSON.stringify({ code: b.code, sourceMap: b.sourceMap })),
  (err) => { console.error(err && err.stack || String(err)); process.exit(1); },
);`;

export function bundleWorkflowsInChild(workflowsPath: string): Promise<WorkflowBundleWithSourceMap> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD_SCRIPT], {
      env: {
        ...process.env,
        METEOR_WORKFLOWS_PATH: workflowsPath,
        METEOR_TEMPORAL_WORKER_MODULE: require.resolve('@temporalio/worker'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code !== 0) {
        reject(new Error(`bundling the workflows failed (${signal ?? `exit ${code}`}): ${stderr}`));
        return;
      }
      // Bundler warnings, as the in-process bundler printed them.
      if (stderr) console.warn(stderr);
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as WorkflowBundleWithSourceMap);
      } catch (e) {
        reject(new Error(`bundling the workflows returned no bundle: ${String(e)}`));
      }
    });
  });
}
