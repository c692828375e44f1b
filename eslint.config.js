// Lint: typescript-eslint's recommended rules, plus the type-aware checks that matter most in a
// codebase built on promises and sockets (a forgotten promise is a hang or an unhandled rejection).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "coverage/**", ".bench-tmp/**", ".scratch/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        project: ["./packages/*/tsconfig.json", "./test/tsconfig.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-explicit-any": "error",
      "no-constant-condition": ["error", { checkLoops: false }],
      // `let ar!: T; ar = new T(() => ar.x)`: a value whose own callbacks refer to it.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      // Flags `let x = ""` assigned again in a try block: defensive initialisation, not a bug.
      "no-useless-assignment": "off",
    },
  },
  {
    // Shipped code runs on engines, where `require` is the engine namespace's own.
    files: ["test/**/*.ts", "examples/**/*.ts", "bench/**/*.ts", "packages/*/test/**/*.ts"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // Plain JavaScript and config files sit outside the TypeScript projects: syntax rules only.
    files: ["**/*.mjs", "**/*.js", "vitest.config.ts"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { project: false, program: null, projectService: false },
      globals: {
        process: "readonly",
        console: "readonly",
        URL: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
      },
    },
  },
);
