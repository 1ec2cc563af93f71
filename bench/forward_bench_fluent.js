// FluentServer peer of forward_bench.py: @fluent-org/logger's forward server
// on a free 127.0.0.1 port. Prints {"port": P} once listening; on SIGUSR2
// prints {"entries": N} (entries decoded so far); exits on SIGTERM.
// Usage: node forward_bench_fluent.js <node_modules dir>
"use strict";
const path = require("path");
const { FluentServer } = require(path.join(process.argv[2], "@fluent-org", "logger"));

async function main() {
  const server = new FluentServer({ listenOptions: { host: "127.0.0.1", port: 0 } });
  let entries = 0;
  server.on("entry", () => { entries++; });
  await server.listen();
  process.stdout.write(JSON.stringify({ port: server.port }) + "\n");
  process.on("SIGUSR2", () => process.stdout.write(JSON.stringify({ entries }) + "\n"));
  process.on("SIGTERM", () => process.exit(0));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
