// Peer: the db-benchmark group-by questions and a full sort in DuckDB, data
// loaded once into memory, each question timed (best of REPEAT).
// usage: node groupby_duckdb.mjs FILE THREADS REPEAT QUERIES.sql
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

const [file, threads = '2', repeat = '1', qfile] = process.argv.slice(2);
const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
const conn = await inst.connect();
await conn.run(`CREATE TABLE x AS SELECT * FROM read_csv('${file}')`);
const qs = readFileSync(qfile, 'utf8').split('\n').filter((l) => l && !l.startsWith('--'));
qs.push('SELECT * FROM x ORDER BY v3');
for (let i = 0; i < qs.length; i++) {
  let best = Infinity, rows = 0;
  for (let r = 0; r < Number(repeat); r++) {
    await conn.run('DROP TABLE IF EXISTS ans');
    const t0 = process.hrtime.bigint();
    // Materialise the answer, as the db-benchmark does.
    await conn.run(`CREATE TABLE ans AS ${qs[i]}`);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    const c = await conn.runAndReadAll('SELECT count(*) FROM ans');
    rows = Number(c.getRows()[0][0]);
  }
  const name = i < qs.length - 1 ? `q${i + 1}` : 'sort';
  console.log(`peer=duckdb question=${name} rows=${rows} seconds=${best.toFixed(4)}`);
}
conn.closeSync();
inst.closeSync();
