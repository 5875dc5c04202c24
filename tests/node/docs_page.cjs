// The `/docs` page run the way a browser runs it, in jsdom: the served HTML, its
// scripts (Swagger UI's bundle and our initializer) and the spec they fetch. The page is
// opened as if by a host name (`agenthost.test`, mapped to the server here), because
// Swagger UI treats localhost and 127.0.0.1 differently: by default it sends the spec's
// URL to validator.swagger.io only when the page is not on one of those.
//
// Every URL the page asks for is recorded: resources (scripts, styles), `fetch`, and
// image sources, which a browser requests as soon as they are set (jsdom itself loads
// images only with the `canvas` package). Nothing leaves the machine: a request for
// another host is refused and reported.
//
// Usage: node docs_page.cjs BASE_URL   (e.g. http://127.0.0.1:8080)
// Prints one JSON object: {operations, requested, outside}.

"use strict";

const { JSDOM, ResourceLoader, VirtualConsole } = require("jsdom");

const server = new URL(process.argv[2]);
const shown = new URL(server.href);
shown.hostname = "agenthost.test";

const requested = [];
const onServer = (url) => {
  const target = new URL(url, shown.href);
  if (target.host === shown.host) target.host = server.host;
  return target;
};
const isOutside = (url) => {
  const target = new URL(url);
  return /^https?:$/.test(target.protocol) && target.host !== shown.host;
};

class Loader extends ResourceLoader {
  fetch(url, options) {
    requested.push(url);
    if (isOutside(url)) return null;
    return super.fetch(onServer(url).href, options);
  }
}

async function main() {
  const html = await (await fetch(new URL("/docs/", server))).text();
  const dom = new JSDOM(html, {
    url: new URL("/docs/", shown).href,
    runScripts: "dangerously",
    resources: new Loader(),
    pretendToBeVisual: true,
    virtualConsole: new VirtualConsole(),
    beforeParse(window) {
      window.fetch = async (input, init) => {
        const url = new URL(typeof input === "string" ? input : input.url, window.location.href);
        requested.push(url.href);
        if (isOutside(url.href)) throw new TypeError("no network in this test");
        return fetch(onServer(url.href), init);
      };
      const image = window.HTMLImageElement.prototype;
      const src = Object.getOwnPropertyDescriptor(image, "src");
      Object.defineProperty(image, "src", {
        get() {
          return src.get.call(this);
        },
        set(value) {
          requested.push(new URL(value, window.location.href).href);
          src.set.call(this, value);
        },
      });
    },
  });
  const { document } = dom.window;
  let operations = 0;
  for (let i = 0; i < 600 && operations === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    operations = document.querySelectorAll(".opblock").length;
  }
  // What renders after the operations (the validator badge) gets its turn too.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const linked = [];
  for (const element of document.querySelectorAll("[src], [href]")) {
    for (const name of ["src", "href"]) {
      const value = element.getAttribute(name);
      if (value && !value.startsWith("#")) {
        linked.push(new URL(value, dom.window.location.href).href);
      }
    }
  }
  const outside = [...new Set([...requested, ...linked].filter(isOutside))];
  console.log(JSON.stringify({ operations, requested, outside }));
  dom.window.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
