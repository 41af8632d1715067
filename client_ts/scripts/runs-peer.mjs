// TypeScript side of the cross-language durable-runs test (the Java suite's CrossLangRunsTest): starts a run,
// or gets one, with the TypeScript client and prints it as one JSON line. Needs the built client (`npm run build`).
//
//     node scripts/runs-peer.mjs start --target HOST:PORT --thread T --queue Q --input '{"topic":"x"}'
//     node scripts/runs-peer.mjs get --target HOST:PORT --run RUN_ID
import { parseArgs } from "node:util";
import { CairnClient, decodeJson } from "../dist/index.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: "string", default: process.env.CAIRN_TARGET },
    token: { type: "string", default: process.env.CAIRN_TOKEN },
    thread: { type: "string" },
    queue: { type: "string", default: "default" },
    input: { type: "string", default: "null" },
    run: { type: "string" },
  },
});
const action = positionals[0];
if (!values.target || !["start", "get"].includes(action)) {
  console.error("usage: runs-peer.mjs start|get --target HOST:PORT [--thread T --queue Q --input JSON | --run ID]");
  process.exit(2);
}
const client = new CairnClient(values.target, { token: values.token || undefined });
try {
  const run =
    action === "start"
      ? await client.startRun(values.thread, JSON.parse(values.input), { queue: values.queue, metadata: { started_by: "typescript" } })
      : await client.getRun(values.run);
  const json = (bytes, type) => (type === "json" ? decodeJson(bytes) ?? null : null);
  process.stdout.write(
    JSON.stringify({
      run_id: run.runId,
      thread_id: run.threadId,
      queue: run.queue,
      status: run.status,
      input: json(run.input, run.inputType),
      output: json(run.output, run.outputType),
      checkpoint_id: run.checkpointId,
      worker_ids: run.attempts.map((a) => a.workerId),
      metadata: run.metadata ?? {},
    }) + "\n",
  );
} finally {
  client.close();
}
