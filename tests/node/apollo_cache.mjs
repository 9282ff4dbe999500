// Apollo Client's normalized cache against a running gateway (tests/api/test_apollo_cache.py):
// objects with an `id` are stored once under `${__typename}:${id}`, so a mutation's answer
// updates every query that listed the object, without a refetch.
//
// A live update (deviceStatusChanged over GraphQLWsLink) lands in the same entries.
//
// usage: node apollo_cache.mjs <graphql url> <token> <project> <runId>
// Prints one JSON object: what the cache held after each step.
import { ApolloClient, HttpLink, InMemoryCache, gql, split } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, project, runId] = process.argv.slice(2);
const ws = createClient({
  url: url.replace(/^http/, "ws"),
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
});
const isSubscription = ({ query }) => {
  const definition = getMainDefinition(query);
  return definition.kind === "OperationDefinition" && definition.operation === "subscription";
};
const client = new ApolloClient({
  link: split(
    isSubscription,
    new GraphQLWsLink(ws),
    new HttpLink({ uri: url, headers: { Authorization: `Bearer ${token}` } }),
  ),
  cache: new InMemoryCache(),
});

const LISTS = gql`
  query Lists($project: String!) {
    project(code: $project) { id code tables { id name } }
    devices(project: $project) { id deviceId version status }
    records(project: $project, table: "notes") { edges { node { id recordId data } } }
    syncHistory(project: $project) { edges { node { id deviceId direction } } }
    projectSyncRuns(project: $project) { data { id status currentStep } }
    syncs(project: $project) { id name }
  }
`;
const REPORT = gql`
  mutation Report($project: String!) {
    reportDevice(project: $project, deviceId: "phone", version: "9.9") { id version }
  }
`;
const STEP = gql`
  mutation Step($id: Int!) { updateSyncRun(id: $id, currentStep: "step 2") { id currentStep } }
`;
const LIVE = gql`
  subscription Live($project: String!) {
    deviceStatusChanged(project: $project) { id deviceId status pendingDown }
  }
`;
const NODE = gql`
  query Node($id: ID!) { node(id: $id) { id ... on Record { recordId data } } }
`;

const listed = (await client.query({ query: LISTS, variables: { project } })).data;
const keysAfterQuery = Object.keys(client.cache.extract()).sort();
await client.mutate({ mutation: REPORT, variables: { project } });
await client.mutate({ mutation: STEP, variables: { id: Number(runId) } });
const recordId = listed.records.edges[0].node.id;
const node = (await client.query({ query: NODE, variables: { id: recordId } })).data.node;
// The lists again, from the cache alone: the mutations' answers must show in them.
const cached = client.readQuery({ query: LISTS, variables: { project } });
const keysAtEnd = Object.keys(client.cache.extract()).sort();

// Live: another device (the tablet) writes a note the phone has not received, so the phone's
// status changes; the subscription's message updates the phone's entry in the cache.
const phone = () => client.readQuery({ query: LISTS, variables: { project } }).devices
  .find((d) => d.deviceId === "phone");
const before = phone().status;
const changed = new Promise((resolve, reject) => {
  const subscription = client.subscribe({ query: LIVE, variables: { project } }).subscribe({
    next: ({ data }) => {
      const device = data.deviceStatusChanged;
      if (device.deviceId === "phone" && device.status !== before) {
        subscription.unsubscribe();
        resolve(device);
      } else if (device.deviceId === "phone") {
        write(); // the first message: the phone as it is; now the tablet writes
      }
    },
    error: reject,
  });
});
let written = false;
async function write() {
  if (written) return;
  written = true;
  const action = {
    table: "notes", user: "alice", action: "INSERT", recordId: "f".repeat(32),
    time: 1_800_000_000_000, order: 0, jsonData: JSON.stringify({ text: "from the tablet" }),
  };
  await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: `mutation($p: String!, $a: [ActionInput!]!) {
        writeActions(project: $p, actions: $a, deviceId: "tablet") { accepted } }`,
      variables: { p: project, a: [action] },
    }),
  });
}
const live = await changed;
const afterLive = phone();
await ws.dispose();
console.log(
  JSON.stringify({ keysAfterQuery, keysAtEnd, listed, cached, node, before, live, afterLive }),
);
