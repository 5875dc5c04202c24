// The console in a real browser: Debian's Chromium, headless, driven by playwright-core
// (Playwright's own browser download is not reachable here, so `executablePath`).
// Started by tests/tests/e2e/console.rs, which runs the real server with the fake LLM
// and prepares what the steps below expect (Dexter with data and a gated tool, the
// `core` node plugin, a workflow `gate` with an approval node, `hello` 1.0.0 active and
// 2.0.0 installed).
//
// Every page visited is checked with axe-core (no critical or serious violations), at
// 1280×800 and at a 390-px phone width (the page must not scroll sideways), and for a
// visible keyboard focus; screenshots of both widths go to ARTIFACTS.
//
// Environment: BASE_URL, KEY (an owner key), ADMIN_TOKEN, CHROMIUM, ARTIFACTS.
// Prints one line per step; exits 1 with the reason on the first failure.

import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
// Evaluated through the DevTools protocol: the console's Content-Security-Policy
// (script-src 'self') stays on and would refuse an injected script tag.
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const KEY = env("KEY");
const ADMIN = env("ADMIN_TOKEN");
const ARTIFACTS = env("ARTIFACTS");
rmSync(ARTIFACTS, { recursive: true, force: true });
mkdirSync(ARTIFACTS, { recursive: true });

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const checked = [];

function fail(message) {
  throw new Error(message);
}

/** axe-core, both widths, focus ring; screenshots. */
async function check(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    // color-contrast is checked too; only the rules' impact decides.
    window.axe.run(document, { resultTypes: ["violations"] }),
  );
  const bad = result.violations.filter((v) => v.impact === "critical" || v.impact === "serious");
  if (bad.length) {
    const details = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    fail(`axe on ${name}: ${details.join("; ")}`);
  }
  await page.screenshot({ path: join(ARTIFACTS, `${name}-1280.png`), fullPage: true });

  // Keyboard focus is visible: from the page's heading, tab to the next control and
  // read its outline.
  await page.locator("h1").first().focus();
  await page.keyboard.press("Tab");
  const ring = await page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return "nothing focused";
    const style = getComputedStyle(el);
    const visible = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    return visible ? "ok" : `${el.tagName} has outline ${style.outlineStyle} ${style.outlineWidth}`;
  });
  if (ring !== "ok") fail(`focus on ${name}: ${ring}`);

  await page.setViewportSize(PHONE);
  await page.waitForTimeout(100); // one layout pass after the resize (not a threshold)
  const overflow = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll("body *")]
      .filter((el) => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.right > width + 1 && !el.closest(".table-wrap, .graph, pre");
      })
      .slice(0, 3)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
    return { scroll: document.documentElement.scrollWidth, width, wide };
  });
  if (overflow.scroll > overflow.width || overflow.wide.length) {
    fail(`${name} overflows at 390 px: scrollWidth ${overflow.scroll}, wide: ${overflow.wide.join(", ")}`);
  }
  await page.screenshot({ path: join(ARTIFACTS, `${name}-390.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
  checked.push(name);
  console.log(`checked ${name}`);
}

async function signIn(page, secret) {
  await page.goto(`${BASE}/`);
  await page.getByRole("heading", { name: "Sign in to Agenthost" }).waitFor();
  await page.getByLabel("Workspace API key or instance admin token").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function chat(page) {
  await page.getByRole("heading", { name: "Chat" }).waitFor();
  await page.getByLabel("Agent").selectOption("dexter");
  await page.getByLabel("Message").fill("What was our revenue in Q4 2025?");
  await page.getByRole("button", { name: "Send" }).click();
  const log = page.getByRole("log");
  await log.getByText("Q4 2025 revenue was 30000 USD.").waitFor();
  const tool = log.locator("details.tool", { hasText: "revenue_analysis" });
  await tool.locator("summary").click();
  await tool.getByText("total_revenue").first().waitFor();
  await log.getByText(/prompt \+ \d+ completion tokens/).first().waitFor();
  console.log("ok chat: streamed answer and the revenue_analysis call with its output");

  // A gated tool: the turn pauses, the approval is answered inline, the turn goes on.
  await page.getByLabel("Message").fill("And the operating income?");
  await page.getByRole("button", { name: "Send" }).click();
  const gated = log.locator("details.tool", { hasText: "waiting for your approval" });
  await gated.waitFor();
  await gated.getByLabel("Reason (optional)").fill("fine");
  await check(page, "chat-approval");
  await gated.getByRole("button", { name: "Approve" }).click();
  await log.getByText("Q4 2025 operating income was 13500 USD.").waitFor();
  await log.locator("details.tool", { hasText: "profit_and_loss — done" }).waitFor();
  console.log("ok chat: approved profit_and_loss inline and got the answer");

  // The conversation is listed, and opening it draws the same history.
  const link = page.getByRole("complementary", { name: "Conversations" }).getByRole("link").first();
  await link.click();
  await log.getByText("Q4 2025 operating income was 13500 USD.").waitFor();
  await check(page, "chat");
}

async function buildWorkflow(page) {
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.getByRole("heading", { name: "Workflows" }).waitFor();
  await check(page, "workflows");
  await page.getByRole("link", { name: "New workflow" }).click();
  await page.getByRole("heading", { name: "New workflow" }).waitFor();
  await page.getByLabel("Name").fill("Doubler");
  await page.getByLabel("Search node types").fill("transform");
  await page.getByRole("button", { name: "Add core/transform" }).click();
  await page.getByLabel("Search node types").fill("output");
  await page.getByRole("button", { name: "Add core/output" }).click();
  // output_1 is selected: its value reads the transform's output.
  await page.getByLabel(/^value/).fill("{{ nodes.transform_1.output }}");
  await page.getByLabel("From").selectOption("transform_1");
  await page.getByLabel("To").selectOption("output_1");
  await page.getByRole("button", { name: "Connect" }).click();
  // transform_1 has no value: the server's 422 names it, and it shows on that node.
  await page.getByRole("button", { name: "Create workflow" }).click();
  await page.getByRole("alert").getByText(/Not saved: 1 problem/).waitFor();
  const bad = page.locator('.step[data-node-id="transform_1"] .problem');
  await bad.getByText(/"value" is a required property/).waitFor();
  if (await page.locator('.step[data-node-id="output_1"] .problem').count()) fail("output_1 shows a problem");
  await page.getByLabel("Selected node").selectOption("transform_1");
  const field = page.getByLabel(/^value/);
  if ((await field.getAttribute("aria-invalid")) !== "true") fail("the value field is not marked invalid");
  await check(page, "workflow-editor-problem");
  console.log("ok workflow: the 422 problem is on transform_1 and its value field");
  await field.fill("{{ input.n * 2 }}");
  await page.getByRole("button", { name: "Create workflow" }).click();
  await page.getByRole("heading", { name: "Doubler" }).waitFor();
  await page.locator('.step[data-node-id="output_1"]').waitFor();
  await check(page, "workflow");
  await page.getByLabel("Input (JSON)").fill('{"n": 21}');
  await page.getByRole("button", { name: "Run workflow" }).click();
  await page.getByRole("heading", { name: /Execution/ }).waitFor();
  await page.locator("dl.facts .badge", { hasText: "succeeded" }).waitFor();
  await page.getByText("Output", { exact: true }).click();
  await page.locator("pre.json", { hasText: "42" }).first().waitFor();
  await check(page, "execution");
  console.log("ok workflow: saved, ran, output 42");
}

async function approve(page) {
  await page.goto(`${BASE}/workflows/gate`);
  await page.getByRole("heading", { name: "Gate" }).waitFor();
  await page.getByLabel("Input (JSON)").fill('{"n": 3}');
  await page.getByRole("button", { name: "Run workflow" }).click();
  await page.locator("dl.facts .badge", { hasText: "waiting" }).waitFor();
  const execution = page.url().split("/").pop();
  await page.getByRole("link", { name: "Approvals", exact: true }).click();
  await page.getByRole("heading", { name: "Approvals" }).waitFor();
  const card = page.locator(".card", { hasText: execution.slice(0, 8) });
  await card.getByLabel("Comment (optional)").fill("looks right");
  await check(page, "approvals");
  await card.getByRole("button", { name: "Approve" }).click();
  await page.getByRole("status").getByText(/You chose to approve/).waitFor();
  await page.goto(`${BASE}/executions/${execution}`);
  await page.locator("dl.facts .badge", { hasText: "succeeded" }).waitFor();
  console.log("ok approvals: approved from the inbox, the execution finished");

  // Cancel a waiting run, then retry it: the retry waits again, and says what it retried.
  await page.goto(`${BASE}/workflows/gate`);
  await page.getByLabel("Input (JSON)").fill('{"n": 4}');
  await page.getByRole("button", { name: "Run workflow" }).click();
  await page.locator("dl.facts .badge", { hasText: "waiting" }).waitFor();
  await page.getByRole("button", { name: "Cancel execution" }).click();
  await page.locator("dl.facts .badge", { hasText: "cancelled" }).waitFor();
  await page.getByRole("button", { name: "Retry execution" }).click();
  await page.locator("dl.facts dt", { hasText: "Retry of" }).waitFor();
  await page.locator("dl.facts .badge", { hasText: "waiting" }).waitFor();
  console.log("ok executions: cancelled a waiting run and retried it");
  await page.getByRole("link", { name: "Executions" }).click();
  await page.getByLabel("Status").selectOption("succeeded");
  await page.locator("tbody tr").nth(1).waitFor();
  await check(page, "executions");
}

async function automation(page) {
  await page.getByRole("link", { name: "Schedules" }).click();
  await page.getByRole("heading", { name: "Schedules" }).waitFor();
  await page.getByRole("button", { name: "Run now: Morning report (trigger 0)" }).click();
  await page.getByRole("status").getByText("Morning report (trigger 0): started now.").waitFor();
  await page.getByRole("button", { name: "History of Morning report (trigger 0)" }).click();
  await page.getByRole("cell", { name: "manual" }).waitFor();
  await check(page, "schedules");
  await page.getByRole("link", { name: "Rules" }).click();
  await page.getByRole("heading", { name: "Rules" }).waitFor();
  await check(page, "rules");
  await page.getByRole("link", { name: "Activity" }).click();
  const feed = page.getByRole("list", { name: "Events" });
  await feed.getByText("ticket.created").first().waitFor();
  await feed.getByText("approval.decided").first().waitFor();
  await check(page, "activity");
  console.log("ok automation: ran a schedule now and saw its run; the live feed shows the events");
}

async function support(page) {
  await page.getByRole("link", { name: "Tickets" }).click();
  await page.getByRole("heading", { name: "Tickets" }).waitFor();
  await check(page, "tickets");
  await page.getByRole("link", { name: "Charged twice, I want a refund" }).click();
  const enrichment = page.getByRole("region", { name: "Enrichment" });
  await enrichment.getByText(/^negative/).waitFor();
  await enrichment.getByText(/^(billing|refund) \(confidence/).waitFor();
  await enrichment.getByRole("link", { name: /How refunds work/ }).first().waitFor();
  // With the fake LLM configured the reply is the model's (an echo of its prompt), with
  // the citations the server numbered.
  await enrichment.getByRole("heading", { name: /Suggested reply \(llm/ }).waitFor();
  await enrichment.locator("ol.citations li").first().waitFor();
  await page.getByLabel("Status").selectOption("pending");
  await page.getByRole("status").getByText("Status set to pending.").waitFor();
  await check(page, "ticket");
  console.log("ok support: the ticket's enrichment (sentiment, intent, related article, reply); status moved");
  await page.getByRole("link", { name: "Knowledge base" }).click();
  await page.getByLabel("Question or words").fill("refund for a duplicate charge");
  await page.getByLabel("Mode").selectOption("full_text");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("status").getByText(/passages? for .* in full_text mode/).waitFor();
  await page.locator("ol li a", { hasText: "How refunds work" }).first().waitFor();
  await check(page, "kb");
  await page.getByRole("table").getByRole("link", { name: "How refunds work", exact: true }).click();
  await page.getByRole("heading", { name: "How refunds work" }).waitFor();
  await check(page, "article");
  console.log("ok support: knowledge-base search shows the matching passages and mode");
}

async function admin(page) {
  await page.getByRole("link", { name: "Agents" }).click();
  await page.getByRole("link", { name: "Dexter" }).click();
  await page.getByRole("heading", { name: "Dexter" }).waitFor();
  await page.getByRole("region", { name: /Health/ }).getByText(/^2 \(2 completed/).waitFor();
  await check(page, "agent");
  await page.getByRole("link", { name: "Usage" }).click();
  await page.getByRole("img", { name: /^Tokens per agent:.* dexter [\d,]+/ }).waitFor();
  await check(page, "usage");
  await page.getByRole("link", { name: "Keys" }).click();
  await page.getByLabel("Name").fill("ci robot");
  await page.getByLabel("Role").selectOption("member");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByLabel("New key's secret").getByText(/^ahk_/).waitFor();
  await check(page, "keys");
  console.log("ok admin: agent health, usage charts, a new key with its secret shown once");
}

async function plugins(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, ADMIN);
  await page.getByRole("heading", { name: "Workspaces" }).waitFor();
  await page.getByRole("link", { name: "Plugins" }).click();
  await page.getByRole("heading", { name: "Plugins" }).waitFor();
  await check(page, "plugins");
  await page.getByRole("link", { name: "hello" }).click();
  await page.getByRole("heading", { name: "Plugin hello" }).waitFor();
  await page.getByRole("button", { name: "Activate 2.0.0" }).click();
  await page.getByRole("status").getByText("Activated 2.0.0.").waitFor();
  const active = (version) => page.locator('[data-testid="active-version"]', { hasText: new RegExp(`^${version}$`) });
  await active("2.0.0").waitFor();
  await check(page, "plugin");
  await page.getByRole("button", { name: "Roll back to 1.0.0" }).click();
  await page.getByRole("status").getByText("Rolled back to 1.0.0.").waitFor();
  await active("1.0.0").waitFor();
  console.log("ok plugins: activated 2.0.0, rolled back to 1.0.0");

  // A newcomer with only the admin token makes a workspace and signs in to it.
  await page.getByRole("link", { name: "Workspaces" }).click();
  await page.getByRole("heading", { name: "Workspaces" }).waitFor();
  await page.getByLabel("Name").fill("Newcomer");
  await page.getByLabel("Slug").fill("newcomer");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.getByLabel("Owner key").getByText(/^ahk_/).waitFor();
  await check(page, "workspaces");
  await page.getByRole("button", { name: "Sign in to Newcomer with it" }).click();
  await page.getByText("Newcomer · owner").waitFor();
  await page.getByRole("heading", { name: "Chat" }).waitFor();
  console.log("ok workspaces: created one with the admin token and signed in with its owner key");
}

const browser = await chromium.launch({ executablePath: env("CHROMIUM") });
let page;
try {
  const context = await browser.newContext({ viewport: DESKTOP });
  context.setDefaultTimeout(15000);
  page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await signIn(page, "ahk_not-a-key");
  await page.getByRole("alert").getByText("This key or token is not valid.").waitFor();
  await check(page, "signin");
  await signIn(page, KEY);
  await chat(page);
  await buildWorkflow(page);
  await approve(page);
  await automation(page);
  await support(page);
  await admin(page);
  await plugins(page);
  // Chromium logs the answers the steps asked for as failed resources: the wrong key
  // (401), the admin token tried as a workspace key at sign-in (403), the 422. Any
  // other error (a script error, a CSP refusal) fails the test.
  const unexpected = errors.filter((e) => !/status of (401|403|422)/.test(e));
  if (unexpected.length) fail(`errors in the page: ${unexpected.join(" | ")}`);
  console.log(`passed: ${checked.length} pages checked (${checked.join(", ")})`);
} catch (error) {
  if (page) await page.screenshot({ path: join(ARTIFACTS, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`FAILED: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
