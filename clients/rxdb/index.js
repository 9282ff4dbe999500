/**
 * RxDB replication through Sync Gateway: the query builders RxDB's GraphQL replication needs
 * for a table of a gateway project, and `replicateRecords`, which starts one.
 *
 * An ES module without a build step and without dependencies of its own: `replicateRecords`
 * takes RxDB's `replicateGraphQL` from the app (so the app's RxDB version is the one used).
 *
 *   import { replicateGraphQL } from 'rxdb/plugins/replication-graphql';
 *   import { replicateRecords } from './clients/rxdb/index.js';
 *
 *   const replication = replicateRecords({
 *     replicateGraphQL, collection: db.notes, url: 'https://sync.example.org/graphql',
 *     project: 'demo', table: 'notes', token: () => auth.currentToken(),
 *   });
 *   await replication.awaitInitialReplication();
 *
 * The collection's schema has `primaryKey: 'id'` (32 lower-case hex digits, e.g.
 * `crypto.randomUUID().replaceAll('-', '')`) and the table's declared fields. See README.md.
 */

const DOCUMENTS = 'documents checkpoint { cursor } resync';

/** The pull query: `(checkpoint, limit) => request`, RxDB's `pull.queryBuilder`. */
export function pullQueryBuilder({ project, table, user = null }) {
  const query = `query PullRecords($project: String!, $table: String!, $user: String,
      $checkpoint: RecordCheckpointInput, $limit: Int!) {
    pullRecords(project: $project, table: $table, user: $user, checkpoint: $checkpoint,
                limit: $limit) { ${DOCUMENTS} }
  }`;
  return (checkpoint, limit) => ({
    query,
    operationName: 'PullRecords',
    // Only the cursor: RxDB may hand back more than the gateway sent.
    variables: { project, table, user, limit, checkpoint: checkpoint ? { cursor: checkpoint.cursor } : null },
  });
}

/** The push mutation: `(rows) => request`, RxDB's `push.queryBuilder`. Its answer is the
 *  list of conflicting master documents RxDB expects. */
export function pushQueryBuilder({ project, table, user = null, deviceId = null }) {
  const query = `mutation PushRecords($project: String!, $table: String!, $user: String,
      $deviceId: String, $rows: [RecordPushRow!]!) {
    pushRecords(project: $project, table: $table, user: $user, deviceId: $deviceId, rows: $rows)
  }`;
  return (rows) => ({
    query,
    operationName: 'PushRecords',
    variables: {
      project, table, user, deviceId,
      rows: rows.map((row) => ({
        assumedMasterState: row.assumedMasterState ?? null,
        newDocumentState: row.newDocumentState,
      })),
    },
  });
}

/** The live subscription: `(headers) => request`, RxDB's `pull.streamQueryBuilder`. */
export function pullStreamQueryBuilder({ project, table, user = null }) {
  const query = `subscription RecordChanges($project: String!, $table: String!, $user: String) {
    recordChanges(project: $project, table: $table, user: $user) { ${DOCUMENTS} }
  }`;
  return () => ({ query, operationName: 'RecordChanges', variables: { project, table, user } });
}

/**
 * RxDB's `pull.responseModifier`: the stream's first message (`resync: true`) and a message
 * that carries an error instead of data (an expired token, lost access) become RxDB's
 * 'RESYNC', so RxDB pulls over HTTP, where such an error reaches `replication.error$` and is
 * retried every `retryTime`.
 */
export function pullResponseModifier(data) {
  if (data == null || data.resync) return 'RESYNC';
  return { documents: data.documents, checkpoint: data.checkpoint };
}

/** `ws:`/`wss:` for an `http:`/`https:` GraphQL url (the gateway serves both on one path). */
export function webSocketUrl(url) {
  return url.replace(/^http/, 'ws');
}

/**
 * Starts RxDB's GraphQL replication of `collection` with one table of a gateway project.
 *
 * - `token`: the bearer token, or a function returning it (or a promise of it), asked before
 *   every HTTP request and every WebSocket (re)connection: return a fresh token there.
 * - `user`: whose data (omitted: the token's user); `deviceId`: recorded with the pushes.
 * - `batchSize` (default 100) at most the gateway's `GATEWAY_MAX_READ_BATCH` (1000).
 * - `live` (default true): stay connected and receive changes over the WebSocket.
 * - anything else (`retryTime`, `autoStart`, `waitForLeadership`, `push`/`pull` extras) is
 *   passed on to `replicateGraphQL`.
 */
export function replicateRecords({
  replicateGraphQL, collection, url, project, table, token, user = null, deviceId = null,
  batchSize = 100, live = true, replicationIdentifier, wsUrl, pull = {}, push = {}, ...options
}) {
  const current = typeof token === 'function' ? token : () => token;
  const authorization = async () => `Bearer ${await current()}`;
  // RxDB sends its `headers` with every request; a fresh token goes in just before.
  const baseFetch = options.fetch ?? globalThis.fetch;
  const fetchWithToken = async (request) => {
    request.headers.set('Authorization', await authorization());
    return baseFetch(request);
  };
  return replicateGraphQL({
    collection,
    url: { http: url, ...(live ? { ws: wsUrl ?? webSocketUrl(url) } : {}) },
    replicationIdentifier: replicationIdentifier ?? `sync-gateway:${url}:${project}:${table}:${user ?? ''}`,
    live,
    ...options,
    fetch: fetchWithToken,
    pull: {
      batchSize,
      queryBuilder: pullQueryBuilder({ project, table, user }),
      streamQueryBuilder: pullStreamQueryBuilder({ project, table, user }),
      responseModifier: pullResponseModifier,
      // connectionParams as a function: graphql-ws asks again on every reconnection.
      wsOptions: { connectionParams: async () => ({ headers: { Authorization: await authorization() } }) },
      ...pull,
    },
    push: {
      batchSize,
      queryBuilder: pushQueryBuilder({ project, table, user, deviceId }),
      ...push,
    },
  });
}
