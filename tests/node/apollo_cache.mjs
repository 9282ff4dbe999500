// Apollo Client's normalized cache against a running gateway (tests/api/test_apollo_cache.py):
// objects with an `id` are stored once under `${__typename}:${id}`, so a mutation's answer
// updates every query that listed the object, without a refetch.
//
// usage: node apollo_cache.mjs <graphql url> <token> <project> <runId>
// Prints one JSON object: what the cache held after each step.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const [url, token, project, runId] = process.argv.slice(2);
const client = new ApolloClient({
  link: new HttpLink({ uri: url, headers: { Authorization: `Bearer ${token}` } }),
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
console.log(
  JSON.stringify({
    keysAfterQuery,
    keysAtEnd: Object.keys(client.cache.extract()).sort(),
    listed,
    cached,
    node,
  }),
);
