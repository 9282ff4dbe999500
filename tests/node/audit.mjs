// Runs graphql-http's GraphQL-over-HTTP server audits against a URL and prints one JSON
// object: {"results": [{"id", "name", "status": "ok" | "warn" | "error", "reason"}]}.
// Usage: node audit.mjs http://127.0.0.1:8000/graphql [header-name header-value]...
import { auditServer } from 'graphql-http';

const [url, ...pairs] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.mjs URL [header-name header-value]...');
  process.exit(2);
}
const extra = {};
for (let i = 0; i + 1 < pairs.length; i += 2) extra[pairs[i]] = pairs[i + 1];

// Every audit request carries the extra headers (e.g. a token), the audit's own win.
const fetchFn = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...extra, ...(init.headers || {}) } });

const results = await auditServer({ url, fetchFn });
const out = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    try {
      entry.response = {
        status: result.response.status,
        body: await result.response.text(),
      };
    } catch {
      // the body may be gone already
    }
  }
  out.push(entry);
}
console.log(JSON.stringify({ results: out }, null, 1));
