import { describe, expect, it } from 'vitest';
import { packageBuildId, workerVersion } from '../../core/worker-deployment';

describe('workerVersion', () => {
  it('defaults to the "meteor" deployment and the package version as build id', () => {
    expect(workerVersion({}, {})).toEqual({ deploymentName: 'meteor', buildId: packageBuildId() });
    expect(packageBuildId()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('takes the environment, and flags over the environment', () => {
    const env = { METEOR_DEPLOYMENT_NAME: 'meteor-prod', METEOR_BUILD_ID: '0.2.0+abc1234' };
    expect(workerVersion({}, env)).toEqual({ deploymentName: 'meteor-prod', buildId: '0.2.0+abc1234' });
    expect(workerVersion({ buildId: 'canary' }, env)).toEqual({
      deploymentName: 'meteor-prod',
      buildId: 'canary',
    });
  });

  it('is null with --unversioned, which refuses a name or build beside it', () => {
    expect(workerVersion({ unversioned: true }, { METEOR_BUILD_ID: 'x' })).toBeNull();
    expect(() => workerVersion({ unversioned: true, buildId: 'x' }, {})).toThrow(/--unversioned: leave out/);
  });

  it('names the flag or variable that holds a bad value', () => {
    expect(() => workerVersion({ deploymentName: 'meteor.prod' }, {})).toThrow(
      /--deployment-name: 'meteor.prod' is not a deployment name/,
    );
    expect(() => workerVersion({}, { METEOR_BUILD_ID: 'has space' })).toThrow(
      /METEOR_BUILD_ID: 'has space' is not a build id/,
    );
  });
});
