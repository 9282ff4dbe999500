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
export function pullResponseModifier(data, origin) {
  if (origin === 'handler') return data; // a pull's page, never null (errors are thrown)
  if (data == null || data.resync) return 'RESYNC';
  return { documents: data.documents, checkpoint: data.checkpoint };
}

/** `ws:`/`wss:` for an `http:`/`https:` GraphQL url (the gateway serves both on one path). */
export function webSocketUrl(url) {
  return url.replace(/^http/, 'ws');
}

/** The `exp` (seconds since the epoch) of a JWT, or null when it has none. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '='))).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

/**
 * Starts RxDB's GraphQL replication of `collection` with one table of a gateway project, and
 * returns RxDB's replication state (`awaitInitialReplication()`, `error$`, `cancel()`, ...).
 *
 * - `token`: the bearer token, or a function returning it (or a promise of it). It is asked
 *   before every HTTP request and every WebSocket connection. A WebSocket keeps the token it
 *   opened with, so `refreshBeforeSeconds` (default 30) before that token expires the socket is
 *   closed and opened again with the function's (fresh) token; the stream resumes with a
 *   resync, so nothing is missed. Return a token that is still valid from the function.
 * - `user`: whose data (omitted: the token's user); `deviceId`: recorded with the pushes.
 * - `batchSize` (default 100) at most the gateway's `GATEWAY_MAX_READ_BATCH` (1000).
 * - `live` (default true): stay connected and receive changes over the WebSocket.
 * - `replicationIdentifier`: RxDB keeps the checkpoint under it (in the collection's storage):
 *   a replication started again with the same identifier resumes where it stopped.
 * - anything else (`retryTime`, `autoStart`, `waitForLeadership`, `pull`/`push` extras) is
 *   passed on to `replicateGraphQL`.
 */
export function replicateRecords({
  replicateGraphQL, collection, url, project, table, token, user = null, deviceId = null,
  batchSize = 100, live = true, replicationIdentifier, wsUrl, refreshBeforeSeconds = 30,
  pull = {}, push = {}, ...options
}) {
  const current = typeof token === 'function' ? token : () => token;
  // RxDB sends its `headers` with every request; a fresh token goes in just before.
  const baseFetch = options.fetch ?? globalThis.fetch;
  const fetchWithToken = async (request) => {
    request.headers.set('Authorization', `Bearer ${await current()}`);
    return baseFetch(request);
  };
  let socketToken = null;
  let refresh = null;
  let refreshing = false; // the socket was closed for a new token: reconnect at once
  const wsOptions = {
    // A function: graphql-ws asks again on every (re)connection.
    connectionParams: async () => {
      socketToken = await current();
      return { headers: { Authorization: `Bearer ${socketToken}` } };
    },
    retryAttempts: Infinity, // RxDB retries for ever; graphql-ws would give up after 5
    // graphql-ws's own back-off (1 s doubling, plus 0.3 to 3 s), except after a token refresh.
    retryWait: async (retries) => {
      if (refreshing) {
        refreshing = false;
        return;
      }
      const wait = Math.min(1000 * 2 ** retries, 60000) + 300 + Math.random() * 2700;
      await new Promise((resolve) => setTimeout(resolve, wait));
    },
    on: {
      connected: (socket) => {
        clearTimeout(refresh);
        const exp = tokenExpiry(socketToken);
        if (exp === null) return;
        const wait = Math.max(0, exp * 1000 - Date.now() - refreshBeforeSeconds * 1000);
        // 4499: graphql-ws reconnects (with a new token) and subscribes again.
        refresh = setTimeout(() => {
          refreshing = true;
          socket.close(4499, 'token refresh');
        }, wait);
        refresh.unref?.();
      },
      closed: () => clearTimeout(refresh),
    },
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
      wsOptions,
      ...pull,
    },
    push: {
      batchSize,
      queryBuilder: pushQueryBuilder({ project, table, user, deviceId }),
      ...push,
    },
  });
}
