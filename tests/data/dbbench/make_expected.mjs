// Computes the expected answers of the db-benchmark questions with DuckDB,
// an independent engine, and writes them as CSV next to this file:
//   node tests/data/dbbench/make_expected.mjs
// (needs the npm package @duckdb/node-api, installed into bench/ by
// PARTITA_BENCH_DEPS=1 sh scripts/install-deps.sh). Rows are sorted by all
// columns so that the test can compare them after sorting its own result.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../../bench/package.json'));
const { DuckDBInstance } = require('@duckdb/node-api');

const inst = await DuckDBInstance.create(':memory:');
const conn = await inst.connect();
async function load(name, file) {
  await conn.run(`CREATE TABLE ${name} AS SELECT * FROM read_csv('${join(here, file)}', header=true)`);
}
async function answer(sql, out) {
  await conn.run(`COPY (SELECT * FROM (${sql}) ORDER BY ALL) TO '${join(here, out)}' (HEADER, DELIMITER ',')`);
}
function questions(file) {
  return readFileSync(join(here, file), 'utf8').split('\n').filter((l) => l && !l.startsWith('--'));
}

await load('x', 'g1.csv');
let i = 1;
for (const q of questions('groupby.sql')) await answer(q, `groupby_q${i++}.csv`);
await conn.run('DROP TABLE x');
try {
  for (const t of ['x', 'small', 'medium', 'big']) await load(t, `j1_${t}.csv`);
  i = 1;
  for (const q of questions('join.sql')) await answer(q, `join_q${i++}.csv`);
} catch (e) {
  console.error('join data missing, skipped:', e.message);
}
conn.closeSync();
inst.closeSync();
