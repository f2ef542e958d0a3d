import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by the API at /admin (same origin); `pnpm --filter @zigznote/admin dev` proxies the API.
export default defineConfig({
  base: "/admin/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: {
    proxy: { "/api": process.env.ZIGZNOTE_API_URL ?? "http://localhost:3001" },
  },
});
