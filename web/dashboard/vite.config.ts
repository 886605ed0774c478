import { loadEnv } from "vite";
import { defineConfig } from "vitest/config";

// No @vitejs/plugin-react: esbuild's automatic JSX runtime is all the build needs (no fast
// refresh in dev, which this project does not rely on), and it installs with older npm too.
export default defineConfig(({ mode }) => {
  // `npm run dev` proxies the API to a running gateway: `make run`'s, or the one
  // STELLAROPS_API_BASE names (the compose dev override points it at the stellar service).
  const apiBase = loadEnv(mode, ".", "STELLAROPS_").STELLAROPS_API_BASE || "http://127.0.0.1:8080";
  return {
    base: "/",
    esbuild: { jsx: "automatic" },
    build: {
      outDir: "dist",
      emptyOutDir: true,
      sourcemap: true,
      chunkSizeWarningLimit: 800,
      rollupOptions: {
        onwarn(warning, warn) {
          // React Server Components markers in libraries: meaningless in a client bundle.
          if (warning.code === "MODULE_LEVEL_DIRECTIVE" || warning.code === "SOURCEMAP_ERROR") return;
          warn(warning);
        },
      },
    },
    server: {
      proxy: { "/api": apiBase },
    },
    preview: {
      proxy: { "/api": apiBase },
    },
    test: {
      environment: "node",
      include: ["src/**/*.test.ts"],
    },
  };
});
