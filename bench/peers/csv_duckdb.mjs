// Peer: DuckDB's read_csv into an in-memory table (materialised), timed.
// usage: node csv_duckdb.mjs FILE THREADS REPEAT
import { DuckDBInstance } from '@duckdb/node-api';

const [file, threads = '2', repeat = '1'] = process.argv.slice(2);
const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
const conn = await inst.connect();
let best = Infinity, rows = 0;
for (let i = 0; i < Number(repeat); i++) {
  await conn.run('DROP TABLE IF EXISTS t');
  const t0 = process.hrtime.bigint();
  await conn.run(`CREATE TABLE t AS SELECT * FROM read_csv('${file.replace(/'/g, "''")}')`);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  best = Math.min(best, dt);
  const r = await conn.runAndReadAll('SELECT count(*) FROM t');
  rows = Number(r.getRows()[0][0]);
}
console.log(`peer=duckdb rows=${rows} seconds=${best.toFixed(3)}`);
conn.closeSync();
inst.closeSync();
