// The JavaScript clients frontend and mobile teams bring, against a running gateway (driven by
// tests/live/test_js_clients.py): Apollo Client (queries through its persisted-query link,
// writeActions, a GraphQLWsLink subscription, a multipart subscription over HttpLink), urql
// with its subscription exchange, and the bare graphql-ws client.
//
// Every live subscription follows the resume pattern of the README's client recipes: keep the
// progress of every message; whenever the subscription ends (an expired token, a dropped socket,
// a restarted server), subscribe again with the latest progress. A graphql-ws client must then
// not retry on its own (retryAttempts: 0): it would subscribe again with the variables it
// started with, and actions already delivered would arrive twice.
//
// Usage: node clients.mjs '{"http": ..., "ws": ..., "secret": ...}'. It prints
// {"phase": "restart"} when the gateway may be restarted, then reads one line
// {"http": ..., "ws": ...} naming the new one, and ends with one line: the report.

import { createHash, createHmac } from "node:crypto";
import readline from "node:readline";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { Client as UrqlClient, fetchExchange, subscriptionExchange } from "@urql/core";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

// Apollo's GraphQLWsLink looks at the global WebSocket when a subscription fails; Node has one
// from version 22 only.
globalThis.WebSocket ??= WebSocket;

const config = JSON.parse(process.argv[2]);
let httpUrl = config.http;
let wsUrl = config.ws;
const report = { minted: 0 };
const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Tokens as an app gets them from its sign-in: short-lived, fetched again when needed.
function token(user, ttlSeconds = 600) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = part({ alg: "HS256", typ: "JWT" });
  const body = part({ sub: user, role: "PATIENT", iat: now, exp: now + ttlSeconds });
  const signature = createHmac("sha256", config.secret).update(`${head}.${body}`).digest("base64url");
  report.minted += 1;
  return `${head}.${body}.${signature}`;
}
const ALICE = token("alice");

const FOLLOW = `subscription Follow($progress: [ProgressInput!], $deviceId: String) {
  databaseActions(project: "live", deviceId: $deviceId, progress: $progress) {
    actions { recordId }
    progress { table cursor }
  }
}`;
const WRITE = `mutation Write($actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: "live", deviceId: $deviceId, actions: $actions) { accepted }
}`;
const ME = "query Me { me { id } }";

const recordId = (n) => n.toString(16).padStart(32, "0");
const note = (n) => ({
  table: "notes", user: "alice", action: "INSERT", recordId: recordId(n),
  time: 1_700_000_000_000 + n, order: 0, jsonData: JSON.stringify({ text: `#${n}` }),
});
const numbers = (ids) => ids.map((id) => parseInt(id, 16));

// The resume pattern. `subscribeOnce(progress, {next, end})` starts one subscription and
// returns its stop function; `next` gets each batch, `end` is called once it ended, however.
function follow(subscribeOnce) {
  const state = { received: [], progress: null, starts: 0, ends: [], stopped: false, stop: () => {} };
  const start = () => {
    if (state.stopped) return;
    state.starts += 1;
    let ended = false;
    state.stop = subscribeOnce(state.progress, {
      next(batch) {
        // Store the progress of every message, before using its actions.
        state.progress = batch.progress.map(({ table, cursor }) => ({ table, cursor }));
        state.received.push(...numbers(batch.actions.map((a) => a.recordId)));
      },
      end(why) {
        if (ended) return;
        ended = true;
        state.ends.push(why?.code ? `closed ${why.code}` : String(why?.message ?? why));
        setTimeout(start, 200); // and again, from the latest progress
      },
    });
  };
  start();
  return {
    state,
    stop() {
      state.stopped = true;
      state.stop();
    },
  };
}

async function until(what, check, seconds = 15) {
  const deadline = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// Apollo Client

async function apollo() {
  const sent = [];
  const recordingFetch = (uri, options) => {
    const body = JSON.parse(options.body);
    sent.push({ query: typeof body.query === "string", hash: body.extensions?.persistedQuery?.sha256Hash ?? null });
    return fetch(uri, options);
  };
  const sha256 = (text) => createHash("sha256").update(text).digest("hex");
  const http = () =>
    createPersistedQueryLink({ sha256 }).concat(
      new HttpLink({ uri: httpUrl, headers: { Authorization: `Bearer ${ALICE}` }, fetch: recordingFetch }),
    );
  const closes = [];
  const ws = createClient({
    url: () => wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0, // the app subscribes again, with its latest progress
    // A function: every new connection asks for a fresh token. Three seconds, so that the
    // gateway ends this connection when it expires, mid-stream.
    connectionParams: () => ({ Authorization: `Bearer ${token("alice", 3)}` }),
    on: { closed: (event) => closes.push([event.code, event.reason]) },
  });
  const isSubscription = ({ query }) =>
    query.definitions.some((d) => d.kind === "OperationDefinition" && d.operation === "subscription");
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: ApolloLink.split(isSubscription, new GraphQLWsLink(ws), http()),
  });

  // A query through the persisted-query link: the hash alone, then (not found) with the query.
  const me = await client.query({ query: gql(ME), fetchPolicy: "network-only" });
  report.apolloQuery = { me: me.data.me.id, sent: [...sent] };
  // Another client (an app restarted): the gateway knows the hash now.
  sent.length = 0;
  const again = new ApolloClient({ cache: new InMemoryCache(), link: http() });
  const byHash = await again.query({ query: gql(ME) });
  report.apolloPersisted = { me: byHash.data.me.id, sent: [...sent] };

  const write = async (n) => {
    const result = await client.mutate({ mutation: gql(WRITE), variables: { actions: [note(n)], deviceId: "phone" } });
    return result.data.writeActions.accepted;
  };
  report.apolloWrite = await write(1);

  const live = follow((progress, { next, end }) => {
    const subscription = client
      .subscribe({ query: gql(FOLLOW), variables: { progress, deviceId: "apollo-laptop" } })
      .subscribe({
        next: (result) => (result.error ? end(result.error) : next(result.data.databaseActions)),
        error: end,
        complete: () => end("complete"),
      });
    return () => subscription.unsubscribe();
  });
  await until("apollo: the backlog", () => live.state.received.includes(1));
  await write(2); // after subscribing
  await until("apollo: the live action", () => live.state.received.includes(2));
  await until("apollo: the token to expire", () => live.state.starts >= 2);
  await write(3); // the client may be between connections: it must get it anyway
  await until("apollo: the action after the reconnect", () => live.state.received.includes(3));
  live.stop();
  report.apolloLive = { received: live.state.received, starts: live.state.starts, ends: live.state.ends, closes };

  // Subscriptions over HTTP, where WebSockets are blocked: HttpLink's multipart subscriptions.
  const overHttp = new ApolloClient({
    cache: new InMemoryCache(),
    link: new HttpLink({ uri: httpUrl, headers: { Authorization: `Bearer ${ALICE}` } }),
  });
  const streamed = [];
  const subscription = overHttp
    .subscribe({ query: gql(FOLLOW), variables: { progress: live.state.progress, deviceId: "apollo-laptop" } })
    .subscribe({
      next: (result) => streamed.push(result.error ? `error: ${result.error.message}` : numbers(result.data.databaseActions.actions.map((a) => a.recordId))),
      error: (error) => streamed.push(`error: ${error.message}`),
    });
  await sleep(300);
  await write(4);
  await until("apollo multipart: the action", () => streamed.flat().includes(4));
  subscription.unsubscribe();
  report.apolloMultipart = streamed;
  await ws.dispose();
}

// urql

async function urql() {
  const ws = createClient({
    url: () => wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: () => ({ Authorization: `Bearer ${token("alice")}` }),
  });
  const client = new UrqlClient({
    url: httpUrl,
    fetchOptions: () => ({ headers: { Authorization: `Bearer ${ALICE}` } }),
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return { subscribe: (sink) => ({ unsubscribe: ws.subscribe(input, sink) }) };
        },
      }),
    ],
  });
  const me = await client.query(ME, {}).toPromise();
  report.urqlQuery = me.error ? String(me.error) : me.data.me.id;
  const written = await client.mutation(WRITE, { actions: [note(5)], deviceId: "phone" }).toPromise();
  report.urqlWrite = written.error ? String(written.error) : written.data.writeActions.accepted;

  const live = follow((progress, { next, end }) => {
    const { unsubscribe } = client
      .subscription(FOLLOW, { progress, deviceId: "urql-laptop" })
      .subscribe((result) => (result.error ? end(result.error) : next(result.data.databaseActions)));
    return unsubscribe;
  });
  await until("urql: the first sync", () => live.state.received.includes(5));
  ws.terminate(); // the socket drops
  await client.mutation(WRITE, { actions: [note(6)], deviceId: "phone" }).toPromise();
  await until("urql: the action after the drop", () => live.state.received.includes(6));
  live.stop();
  report.urqlLive = { received: live.state.received, starts: live.state.starts, ends: live.state.ends };
  await ws.dispose();
}

// graphql-ws, across a restart of the gateway

async function graphqlWs(lines) {
  const ws = createClient({
    url: () => wsUrl, // where the gateway is now
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: () => ({ Authorization: `Bearer ${token("alice")}` }),
  });
  const live = follow((progress, { next, end }) =>
    ws.subscribe(
      { query: FOLLOW, variables: { progress, deviceId: "ws-laptop" } },
      {
        next: (result) => (result.errors ? end(result.errors[0]) : next(result.data.databaseActions)),
        error: end,
        complete: () => end("complete"),
      },
    ),
  );
  await until("graphql-ws: the first sync", () => live.state.received.includes(6));
  emit({ phase: "restart" });
  const moved = JSON.parse(await lines.next().then((line) => line.value));
  httpUrl = moved.http;
  wsUrl = moved.ws;
  await until("graphql-ws: the actions written during the restart", () => live.state.received.includes(8), 30);
  live.stop();
  report.wsLive = { received: live.state.received, starts: live.state.starts, ends: live.state.ends };
  await ws.dispose();
}

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
try {
  await apollo();
  await urql();
  await graphqlWs(lines);
  emit(report);
  process.exit(0);
} catch (error) {
  report.failed = String(error?.stack ?? error);
  emit(report);
  process.exit(1);
}
