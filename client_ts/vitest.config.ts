import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    globals: true, // LangGraph's validation suite uses the global describe/it/expect
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
