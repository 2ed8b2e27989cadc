/**
 * The image test (`npm run test:image`): the runtime image built by test/image/prepare.sh, run as podman containers
 * (files `*.image.test.ts`, excluded from `npm test` and the fault suite). Built on the main config (same transforms),
 * one file at a time: the containers share the host network and the machine's two cores.
 */
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.image.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 180_000,
  maxWorkers: 1,
  verbose: true,
};
