// RxDB (memory storage) replicating a gateway table through clients/rxdb, while a "phone" writes
// the same table with writeActions. Run by tests/live/test_rxdb.py against a running gateway:
//   node rxdb_replication.mjs '{"url": ..., "token": ..., "project": ..., "table": ...}'
// Prints {"steps": {...}, "rxdb": {id: doc}, "conflicts": [...]} on success; on a failure, the
// step that failed on stderr and exit code 1.
import { createRxDatabase, defaultConflictHandler } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicateGraphQL } from 'rxdb/plugins/replication-graphql';
import { createHmac } from 'node:crypto';
import { replicateRecords, tokenExpiry } from '../../clients/rxdb/index.js';

const { url, token, secret, project, table, batchSize } = JSON.parse(process.argv[2]);
const steps = {};
const timings = {};
let started = Date.now();
const conflicts = [];
const errors = [];
let clock = Date.now();

const rid = (n) => n.toString(16).padStart(32, '0');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A token that expires in `seconds`, signed as the gateway under test signs them.
function mint(seconds, sub = 'alice', role = 'patient') {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, role, iat: now, exp: now + seconds })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

async function graphql(query, variables = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

// The phone: another device of the same user, writing database actions.
async function phone(...actions) {
  const query = `mutation($project: String!, $actions: [ActionInput!]!) {
    writeActions(project: $project, deviceId: "phone", actions: $actions) { accepted } }`;
  await graphql(query, {
    project,
    actions: actions.map(([action, n, data]) => ({
      table, user: 'alice', action, recordId: rid(n), time: clock++, order: 0,
      jsonData: data === undefined ? null : JSON.stringify(data),
    })),
  });
}

async function serverRecords() {
  const query = `query($project: String!, $table: String!) {
    records(project: $project, table: $table, first: 500, includeDeleted: true) {
      edges { node { recordId data deleted } } } }`;
  const found = await graphql(query, { project, table });
  return Object.fromEntries(found.records.edges.map(({ node }) => [node.recordId, node]));
}

async function until(what, check, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const db = await createRxDatabase({ name: `gateway${Date.now()}`, storage: getRxStorageMemory() });
await db.addCollections({
  notes: {
    schema: {
      version: 0, primaryKey: 'id', type: 'object', required: ['id', 'text'],
      properties: { id: { type: 'string', maxLength: 32 }, text: { type: 'string' }, done: { type: 'boolean' } },
    },
    conflictHandler: {
      isEqual: defaultConflictHandler.isEqual,
      // Keeps both edits, so the test can see the resolution reach the server.
      async resolve(input) {
        conflicts.push({ mine: input.newDocumentState.text, theirs: input.realMasterState.text });
        return { ...input.realMasterState, text: `${input.realMasterState.text} + ${input.newDocumentState.text}` };
      },
    },
  },
});
const notes = db.notes;

function replicate(options = {}) {
  const replication = replicateRecords({
    replicateGraphQL, collection: notes, url, project, table, token: () => token, batchSize,
    deviceId: 'rxdb', replicationIdentifier: 'notes', retryTime: 200, waitForLeadership: false,
    ...options,
  });
  // The codes of the gateway's errors in RxDB's (RC_PULL, RC_PUSH, ...), else its message.
  replication.error$.subscribe((error) => {
    const codes = (error?.parameters?.errors ?? []).map((e) => e?.extensions?.code).filter(Boolean);
    errors.push(...(codes.length ? codes : [String(error?.message ?? error)]));
  });
  return replication;
}

const doc = async (n) => (await notes.findOne(rid(n)).exec())?.toJSON();

let step = 'initial sync';
try {
  let replication = replicate();
  await replication.awaitInitialReplication();
  steps.initial = { count: await notes.count().exec(), partiallyUpdated: await doc(3) };

  timings[step] = Date.now() - started; started = Date.now();
  step = 'live: the phone writes, RxDB has it';
  await phone(['INSERT', 500, { text: 'from the phone' }], ['UPDATE', 4, { done: true }]);
  steps.phoneToRxdb = {
    inserted: await until('the phone insert in RxDB', () => doc(500)),
    updated: await until('the partial update in RxDB', async () => (await doc(4))?.done === true && doc(4)),
  };

  timings[step] = Date.now() - started; started = Date.now();
  step = 'live: RxDB writes, the server has it';
  await notes.insert({ id: rid(600), text: 'from RxDB' });
  await (await notes.findOne(rid(1)).exec()).incrementalPatch({ text: 'edited in RxDB' });
  steps.rxdbToServer = await until('the RxDB writes on the server', async () => {
    const records = await serverRecords();
    return records[rid(600)] && records[rid(1)]?.data.text === 'edited in RxDB'
      && { inserted: records[rid(600)], updated: records[rid(1)] };
  });

  timings[step] = Date.now() - started; started = Date.now();
  step = 'deletes both ways';
  await (await notes.findOne(rid(600)).exec()).remove();
  await phone(['DELETE', 500]);
  steps.deletes = {
    onServer: await until('the RxDB delete on the server', async () => (await serverRecords())[rid(600)]?.deleted),
    inRxdb: await until('the phone delete in RxDB', async () => (await doc(500)) === undefined),
  };

  timings[step] = Date.now() - started; started = Date.now();
  step = 'offline writes, then sync';
  await replication.cancel();
  await notes.bulkInsert([700, 701, 702].map((n) => ({ id: rid(n), text: `offline ${n}` })));
  await (await notes.findOne(rid(2)).exec()).incrementalPatch({ done: true });
  await phone(['UPDATE', 5, { text: 'phone, meanwhile' }]);
  replication = replicate();
  await replication.awaitInSync();
  steps.offline = {
    onServer: await until('the offline writes on the server', async () => {
      const records = await serverRecords();
      return [700, 701, 702].every((n) => records[rid(n)]) && records[rid(2)].data.done === true
        && [700, 701, 702, 2].map((n) => records[rid(n)].data);
    }),
    inRxdb: await until('the phone write in RxDB', async () => (await doc(5))?.text === 'phone, meanwhile' && doc(5)),
  };

  timings[step] = Date.now() - started; started = Date.now();
  step = 'a conflict reaches the conflict handler';
  await replication.cancel();
  await (await notes.findOne(rid(6)).exec()).incrementalPatch({ text: 'mine' });
  await phone(['UPDATE', 6, { text: 'theirs' }]);
  replication = replicate();
  await replication.awaitInSync();
  steps.conflict = {
    onServer: await until('the resolution on the server', async () => (await serverRecords())[rid(6)]?.data.text === 'theirs + mine'),
    inRxdb: await until('the resolution in RxDB', async () => (await doc(6))?.text === 'theirs + mine'),
  };
  await replication.awaitInSync();
  await replication.cancel();

  timings[step] = Date.now() - started; started = Date.now();
  step = 'token refresh: the live stream outlives its first token';
  const short = mint(3);
  const expires = tokenExpiry(short) * 1000;
  let fresh = 0;
  let stale = 0;
  const refreshing = () => {
    if (Date.now() < expires - 1200) {
      stale += 1;
      return short;
    }
    fresh += 1;
    return mint(3600);
  };
  replication = replicate({ token: refreshing, refreshBeforeSeconds: 1 });
  await replication.awaitInSync();
  await sleep(Math.max(0, expires + 300 - Date.now()));
  await phone(['INSERT', 800, { text: 'after the first token expired' }]);
  steps.tokenRefresh = {
    received: await until('a live change after the first token expired', () => doc(800)),
    shortTokenUses: stale,
    freshTokens: fresh,
  };
  await replication.cancel();

  const rxdb = Object.fromEntries((await notes.find().exec()).map((d) => {
    const { _meta, _rev, _attachments, _deleted, ...data } = d.toJSON(true);
    return [d.id, data];
  }));

  timings[step] = Date.now() - started; started = Date.now();
  step = 'an error on the live stream reaches error$, and the client goes on';
  replication = replicate();
  await replication.awaitInSync();
  const unexpected = errors.length;
  const admin = { Authorization: `Bearer ${mint(60, 'root', 'admin')}`, 'Content-Type': 'application/json' };
  await fetch(url, {
    method: 'POST', headers: admin,
    body: JSON.stringify({ query: `mutation { removeProjectMember(project: "${project}", user: "alice") }` }),
  });
  steps.streamError = {
    before: unexpected,
    codes: await until('FORBIDDEN in error$', () => errors.includes('FORBIDDEN') && errors.slice(unexpected)),
  };
  await replication.cancel();
  timings[step] = Date.now() - started;
  process.stdout.write(JSON.stringify({ steps, rxdb, conflicts, errors, timings }));
  await db.close();
  process.exit(0);
} catch (error) {
  process.stderr.write(`failed at "${step}": ${error?.stack ?? error}\nreplication errors: ${JSON.stringify(errors)}\n`);
  process.exit(1);
}
