// `node --import ./mcp_node20_register.mjs`: installs mcp_node20_hooks.mjs.
import { register } from 'node:module';

register('./mcp_node20_hooks.mjs', import.meta.url);
