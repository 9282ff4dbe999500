// TypeScript types for your operations, generated from the gateway's schema with
// graphql-codegen (https://the-guild.dev/graphql/codegen):
//
//   npm install --save-dev @graphql-codegen/cli @graphql-codegen/typescript \
//     @graphql-codegen/typescript-operations
//   npx graphql-codegen --config codegen.ts
//
// Copy this file into your app and point `schema` and `documents` at your paths.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  // The published schema (schema.graphql at the root of this repository), or a running
  // gateway's endpoint, e.g. "http://127.0.0.1:8000/graphql" (needs introspection on).
  schema: "../../schema.graphql",
  // Your operations: .graphql files, or gql`...` literals in .ts/.tsx files.
  documents: ["src/**/*.graphql", "src/**/*.{ts,tsx}"],
  generates: {
    "src/gql/types.ts": {
      plugins: ["typescript", "typescript-operations"],
      config: {
        // Every custom scalar of the gateway, and how it travels in JSON. strictScalars makes
        // codegen fail if the gateway ever adds one that is not mapped here.
        strictScalars: true,
        scalars: {
          // 64-bit integers (times in epoch milliseconds, log positions, counters): a JSON
          // number in answers; a number or a string of digits in variables.
          Long: { input: "number | string", output: "number" },
          // RFC 3339 date-time strings, e.g. "2024-05-01T08:30:00+00:00".
          DateTime: "string",
          // Any JSON value (a record's data, a conflict version's data).
          JSON: "unknown",
        },
        enumsAsTypes: true,
        useTypeImports: true,
        // Descriptions of the schema become doc comments of the generated types.
        addDocBlocks: true,
      },
    },
  },
};

export default config;
