// Run the MCP conformance runner (npm @modelcontextprotocol/conformance) against
// Agenthost's /mcp and report what passed.
//
// usage: node mcp_conformance.mjs MCP_URL API_KEY OUTPUT_DIR
// (AGENTHOST_NODE_MODULES: where the runner is installed)
//
// The runner's client sends no credentials and has no option to, so it talks to a small
// proxy here that adds `Authorization: Bearer API_KEY` and passes everything else as it
// came (the Host and Origin headers included, which the DNS-rebinding scenario forges).
// It runs the whole active server suite with mcp_conformance_baseline.yml as its
// expected failures: the runner itself fails if a scenario outside the baseline fails or
// one inside it passes. Prints one JSON object: the runner's exit code and, for every
// scenario, its checks.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [target, apiKey, outputDir] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const modules = process.env.AGENTHOST_NODE_MODULES;
const runner = path.join(modules, '@modelcontextprotocol/conformance/dist/index.js');
const baseline = path.join(here, 'mcp_conformance_baseline.yml');

function startProxy(targetUrl, key) {
  const upstream = new URL(targetUrl);
  const server = http.createServer((request, response) => {
    const headers = { ...request.headers, authorization: `Bearer ${key}` };
    const forwarded = http.request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on('error', (error) => {
      response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(`proxy: ${error.message}`);
    });
    // A client that hangs up (an SSE stream it is done with) ends the upstream request.
    response.on('close', () => forwarded.destroy());
    request.pipe(forwarded);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function run(command, args) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (code) => resolve({ code, output }));
  });
}

function checksFiles(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) {
      found.push(...checksFiles(full));
    } else if (entry === 'checks.json') {
      found.push(full);
    }
  }
  return found;
}

const proxy = await startProxy(target, apiKey);
const { port } = proxy.address();
const mcpPath = new URL(target).pathname;
const result = await run(process.execPath, [
  '--import',
  path.join(here, 'mcp_node20_register.mjs'),
  runner,
  'server',
  '--url',
  `http://127.0.0.1:${port}${mcpPath}`,
  '--suite',
  'active',
  '--expected-failures',
  baseline,
  '-o',
  outputDir,
]);
proxy.close();

const scenarios = {};
for (const file of checksFiles(outputDir)) {
  const name = path.basename(path.dirname(file)).replace(/^server-/, '').replace(/-\d{4}-.*$/, '');
  const checks = JSON.parse(readFileSync(file, 'utf8'));
  const count = (status) => checks.filter((c) => c.status === status).length;
  scenarios[name] = {
    dir: path.relative(outputDir, path.dirname(file)),
    passed: count('SUCCESS'),
    failed: count('FAILURE'),
    warnings: count('WARNING'),
    checks: checks
      .filter((c) => c.status !== 'INFO')
      .map((c) => ({ id: c.id, status: c.status, error: c.errorMessage })),
  };
}
console.log(JSON.stringify({ runner_exit: result.code, runner_output: result.output, scenarios }));
