// TypeScript types for your operations, generated from the gateway's schema with
// graphql-codegen (https://the-guild.dev/graphql/codegen). Checked with @graphql-codegen/cli
// 7.4, typescript 6.1 and typescript-operations 6.1:
//
//   npm install --save-dev @graphql-codegen/cli @graphql-codegen/typescript \
//     @graphql-codegen/typescript-operations
//   npx graphql-codegen --config codegen.ts
//
// Copy this file into your app and point `schema` and `documents` at your paths.
import type { CodegenConfig } from "@graphql-codegen/cli";

// Every custom scalar of the gateway, and how it travels in JSON. With strictScalars, codegen
// fails if the gateway ever adds one that is not mapped here.
const scalars = {
  // 64-bit integers (times in epoch milliseconds, positions, counters): a JSON number in
  // answers; a number or a string of digits in variables.
  Long: { input: "number | string", output: "number" },
  // RFC 3339 date-time strings, e.g. "2024-05-01T08:30:00+00:00".
  DateTime: "string",
  // Any JSON value (a record's data, a conflict version's data).
  JSON: "unknown",
};

const config: CodegenConfig = {
  // The published schema (schema.graphql at the root of this repository), or a running
  // gateway's endpoint, e.g. "http://127.0.0.1:8000/graphql" (needs introspection on).
  schema: "../../schema.graphql",
  // Your operations: .graphql files, or gql`...` literals in .ts/.tsx files.
  documents: ["src/**/*.graphql", "src/**/*.{ts,tsx}"],
  generates: {
    // The schema's types (enums, inputs, objects), with the descriptions as doc comments.
    "src/gql/schema.ts": {
      plugins: ["typescript"],
      config: { strictScalars: true, scalars, useTypeImports: true },
    },
    // The result and variables types of each operation. typescript-operations 6 writes the
    // enums and inputs it uses itself: in the same file as the typescript plugin they would
    // be declared twice, so it imports them from the file above instead.
    "src/gql/operations.ts": {
      plugins: ["typescript-operations"],
      config: {
        strictScalars: true,
        scalars,
        useTypeImports: true,
        importSchemaTypesFrom: "./src/gql/schema.ts",
      },
    },
  },
};

export default config;
