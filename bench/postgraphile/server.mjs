// PostGraphile 5 serving one PostgreSQL schema over GraphQL, for bench/side_by_side.py.
//
//   node_modules/.bin/node server.mjs <postgres-url> <schema> <port>
//
// Amber preset (PostGraphile's default), one node process, pg's default pool (10 connections),
// no GraphiQL, no watch mode: the schema is built once from the database at start.
import { createServer } from "node:http";

import { makePgService } from "postgraphile/adaptors/pg";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const [connectionString, schema, port] = process.argv.slice(2);
if (!connectionString || !schema || !port) {
  console.error("usage: server.mjs <postgres-url> <schema> <port>");
  process.exit(2);
}

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ connectionString, schemas: [schema] })],
  grafserv: { host: "127.0.0.1", port: Number(port), graphiql: false, websockets: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.once("listening", () => console.log(`listening on 127.0.0.1:${port}`));
await serv.addTo(server);
server.listen(Number(port), "127.0.0.1");

// The benchmark stops the server with SIGTERM: release the pool and exit at once.
process.once("SIGTERM", () => {
  server.close();
  pgl.release().finally(() => process.exit(0));
});
