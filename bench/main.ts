import { apiSection } from './api';
import { capacitySection } from './capacity';
import { controlSection } from './control';
import { ingestSection } from './ingest';
import { latencySection } from './latency';
import { notifySection } from './notify';
import { BenchUsageError, parseBenchOptions } from './options';
import { runBench } from './run';
import { workerSection } from './worker';

async function main(): Promise<void> {
  let options;
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof BenchUsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const report = await runBench(
    options,
    { ingest: ingestSection, latency: latencySection, notify: notifySection, api: apiSection, worker: workerSection, control: controlSection, capacity: capacitySection },
    { log: (line) => process.stderr.write(`${line}\n`), print: (text) => process.stdout.write(`${text}\n`) },
  );
  process.exit(Object.keys(report.errors).length > 0 ? 1 : 0);
}

void main();
