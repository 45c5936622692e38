// Peer: the db-benchmark join questions (J1) in DuckDB. The tables are
// generated in SQL with the same sizes, key cardinalities and match rates
// as pt__gen_j1 (x and the lookup tables share 90% of each key level's
// keys), loaded once into memory; each question materialises its answer
// (CREATE TABLE ans AS ...), as the db-benchmark does; best of REPEAT.
// usage: node join_duckdb.mjs N THREADS REPEAT
import { DuckDBInstance } from '@duckdb/node-api';

const [nArg = '1e7', threads = '2', repeat = '2'] = process.argv.slice(2);
const N = Math.round(Number(nArg));
const n1 = Math.max(1, Math.round(N / 1e6)), n2 = Math.max(1, Math.round(N / 1e3)), n3 = N;
const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
const conn = await inst.connect();
// Keyset of a level as seen by one side: x uses 1..n, the lookup tables use
// 1..round(0.9 n) plus n+1..n+(n-round(0.9 n)).
const rkey = (n, j) => `(CASE WHEN ${j} < ${Math.round(0.9 * n)} THEN ${j} + 1 ELSE ${j} + 1 + ${n - Math.round(0.9 * n)} END)`;
const t0 = process.hrtime.bigint();
await conn.run(`CREATE TABLE x AS SELECT
   (hash(i, 1) % ${n1})::BIGINT + 1 AS id1, (hash(i, 2) % ${n2})::BIGINT + 1 AS id2, id3,
   'id' || ((hash(i, 1) % ${n1})::BIGINT + 1) AS id4, 'id' || ((hash(i, 2) % ${n2})::BIGINT + 1) AS id5,
   'id' || id3 AS id6, round(random() * 100, 6) AS v1
 FROM (SELECT i, row_number() OVER (ORDER BY hash(i, 3)) AS id3 FROM range(${N}) t(i))`);
await conn.run(`CREATE TABLE small AS SELECT ${rkey(n1, 'i')} AS id1, 'id' || ${rkey(n1, 'i')} AS id4,
   round(random() * 100, 6) AS v2 FROM range(${n1}) t(i)`);
await conn.run(`CREATE TABLE medium AS SELECT ${rkey(n1, `(hash(i, 4) % ${n1})`)} AS id1, ${rkey(n2, 'i')} AS id2,
   'id' || ${rkey(n1, `(hash(i, 4) % ${n1})`)} AS id4, 'id' || ${rkey(n2, 'i')} AS id5,
   round(random() * 100, 6) AS v2 FROM range(${n2}) t(i)`);
await conn.run(`CREATE TABLE big AS SELECT ${rkey(n1, `(hash(i, 5) % ${n1})`)} AS id1, ${rkey(n2, `(hash(i, 6) % ${n2})`)} AS id2,
   ${rkey(n3, 'j')} AS id3, 'id' || ${rkey(n1, `(hash(i, 5) % ${n1})`)} AS id4, 'id' || ${rkey(n2, `(hash(i, 6) % ${n2})`)} AS id5,
   'id' || ${rkey(n3, 'j')} AS id6, round(random() * 100, 6) AS v2
 FROM (SELECT i, row_number() OVER (ORDER BY hash(i, 7)) - 1 AS j FROM range(${N}) t(i))`);
console.log(`peer=duckdb generated N=${N} in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2)} s`);
const qs = [
  ['q1', 'SELECT * FROM x JOIN small ON x.id1 = small.id1'],
  ['q2', 'SELECT * FROM x JOIN medium ON x.id2 = medium.id2'],
  ['q3', 'SELECT * FROM x LEFT JOIN medium ON x.id2 = medium.id2'],
  ['q4', 'SELECT * FROM x JOIN medium ON x.id5 = medium.id5'],
  ['q5', 'SELECT * FROM x JOIN big ON x.id3 = big.id3'],
];
for (const [name, q] of qs) {
  let best = Infinity, rows = 0;
  for (let r = 0; r < Number(repeat); r++) {
    await conn.run('DROP TABLE IF EXISTS ans');
    const t = process.hrtime.bigint();
    await conn.run(`CREATE TABLE ans AS ${q}`);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
    const c = await conn.runAndReadAll('SELECT count(*) FROM ans');
    rows = Number(c.getRows()[0][0]);
  }
  console.log(`peer=duckdb question=${name} rows=${rows} seconds=${best.toFixed(4)}`);
}
conn.closeSync();
inst.closeSync();
