// Runs every audit of graphql-http's server audits against the URL given and
// prints one JSON line: [{name, status, reason}], in the audits' own order.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  results.push({ name: audit.name, status: result.status, reason: result.reason ?? null });
}
console.log(JSON.stringify(results));
