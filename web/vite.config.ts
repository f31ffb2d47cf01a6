import { defineConfig } from "vite";

// The API serves web/dist at "/" (index.html for unknown non-API paths),
// so assets use absolute paths under "/" and the app uses history routing.
const api = process.env.AGC_API_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: true },
      "/health": { target: api, changeOrigin: true },
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
} as any);
