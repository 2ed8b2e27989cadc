import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';
import { WORKER_VARIABLES } from '../shared/config/worker-config';
import { MASTER_VARIABLES } from '../shared/config/master-config';
import { SIM_VARIABLES } from '../sim/config';
import type { VariableSpecs } from '../shared/platform/config';

const root = path.join(__dirname, '..');
const envExample = readFileSync(path.join(root, '.env.example'), 'utf8');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const all: [string, VariableSpecs][] = [
  ['worker', WORKER_VARIABLES],
  ['master', MASTER_VARIABLES],
  ['simulator', SIM_VARIABLES],
];

describe('.env.example, as an operator copies it', () => {
  const parsed = parse(envExample);
  for (const [service, specs] of all) {
    for (const [name, spec] of Object.entries(specs)) {
      it(`documents the ${service}'s ${name} with its default`, () => {
        if (spec.default === undefined) {
          expect(envExample).toMatch(new RegExp(`^# ${name}=$`, 'm'));
        } else {
          expect(parsed[name]).toBe(spec.default);
        }
      });
    }
  }
});

describe('README configuration tables', () => {
  for (const [service, specs] of all) {
    for (const name of Object.keys(specs)) {
      it(`list the ${service}'s ${name}`, () => expect(readme).toContain(`\`${name}\``));
    }
  }
});
