/**
 * The fault suite (`npm run test:faults`): each file breaks one dependency of a running fleet (master, Redis, Postgres,
 * SMTP/webhook, ticker, API input) and asserts nothing is lost and nothing crashes. Kept out of `npm test` (see
 * jest.config.js) because it deliberately waits through outages. Built on the main config (same transforms), with
 * files run one at a time: each starts real processes, and recovery times measured beside a parallel neighbour lie.
 */
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.fault.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 180_000,
  maxWorkers: 1,
  verbose: true,
};
