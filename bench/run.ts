// `npm run bench`: every benchmark, one after another, each printing its table.
// `npm run bench -- passthrough` (or `store`, `feeds`, `compression`, `push`, `hostile`, `decide`,
// `replicas`, `map`, `load`, `console`) runs one. Not part of the test suite.
import { main as compression } from './compression.ts';
import { main as consoleBench } from './console.ts';
import { main as decide } from './decide.ts';
import { main as feeds } from './feeds.ts';
import { main as hostile } from './hostile.ts';
import { main as load } from './load.ts';
import { main as map } from './map.ts';
import { main as passthrough } from './passthrough.ts';
import { main as push } from './push.ts';
import { main as replicas } from './replicas.ts';
import { main as store } from './store.ts';

const benches: Record<string, () => Promise<string>> = {
  passthrough, store, feeds, compression, push, hostile, decide, replicas, map, load, console: consoleBench,
};
const chosen = process.argv.slice(2);
for (const name of chosen.length ? chosen : Object.keys(benches)) {
  const bench = benches[name];
  if (!bench) {
    process.stderr.write(`unknown bench ${name}; one of: ${Object.keys(benches).join(', ')}\n`);
    process.exitCode = 2;
    break;
  }
  process.stdout.write(`\n## ${name}\n\n${await bench()}\n`);
}
