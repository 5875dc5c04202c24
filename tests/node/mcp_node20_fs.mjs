// `fs` as the conformance runner imports it, on Node 20: the runner (built for Node 22)
// names `globSync` among its imports, which Node 20's `fs` lacks, so the module would
// not even load. Only its `tier-check` command calls it, which our tests never run.
export * from 'node:fs';
export { default } from 'node:fs';

export function globSync() {
  throw new Error('fs.globSync needs Node 22; the MCP tests do not use tier-check');
}
