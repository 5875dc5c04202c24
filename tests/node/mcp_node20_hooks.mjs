// A module resolution hook (registered by mcp_conformance.mjs for the runner's process):
// the conformance runner's `fs` import resolves to mcp_node20_fs.mjs. Nothing else changes.
const shim = new URL('./mcp_node20_fs.mjs', import.meta.url).href;

export async function resolve(specifier, context, next) {
  const fromRunner = context.parentURL?.includes('/@modelcontextprotocol/conformance/');
  if (specifier === 'fs' && fromRunner) {
    return { url: shim, shortCircuit: true };
  }
  return next(specifier, context);
}
