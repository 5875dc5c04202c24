// Built by scripts/setup_console.py (`vite build`) into dist/, which host/build.rs
// embeds into the agenthost binary. Everything is bundled: the page fetches nothing
// from anywhere but its own server.
import { defineConfig } from "vite";

export default defineConfig({
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The binary carries the files: no source maps (they would double its share).
    sourcemap: false,
    // One bundle for the app and React, one for the graph editor (React Flow, dagre),
    // loaded only when a workflow is opened.
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      onwarn(warning, warn) {
        // React Flow marks itself "use client" for React Server Components; this is
        // a plain client bundle, where the directive means nothing.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
