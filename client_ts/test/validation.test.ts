/**
 * LangGraph.js's own checkpointer validation suite (@langchain/langgraph-checkpoint-validation), unchanged:
 * every test of getTuple, list, put, putWrites and deleteThread, run through its `validate()` entry point
 * (the same spec its `validate-checkpointer` CLI runs) against a real Cairn server, once with a plain saver and
 * once with `compressStates`.
 *
 * The suite lists checkpoints across all threads and reuses fixed thread ids, so it runs on the private
 * server of global-setup (unix socket, bearer token of a tenant of its own); every checkpointer starts and
 * ends with that tenant empty, as the suite's README asks.
 */
import { validate } from "@langchain/langgraph-checkpoint-validation";
import { inject } from "vitest";
import { CairnClient } from "../src/index.js";
import { CairnSaver } from "../src/langgraph.js";

const privateTarget = inject("privateTarget");
const token = inject("privateToken");
if (!privateTarget) throw new Error(inject("privateError"));

/** Removes every thread of the validation tenant. */
async function clearTenant(): Promise<void> {
  const client = new CairnClient(privateTarget, { token });
  try {
    for (;;) {
      const { threads } = await client.listThreads({ pageSize: 1000 });
      if (threads.length === 0) return;
      await Promise.all(threads.map((t) => client.clear(t.threadId)));
    }
  } finally {
    client.close();
  }
}

// Twice: as is, and with compressStates (the Python conformance suite runs with compression too). The suite's
// checkpoints serialize to at most 221 bytes, under the 256 bytes below which states are never compressed, so
// the second run shows the option changes nothing there (reads ask for zstd, saves learn the server accepts
// it); saver.test.ts puts and reads checkpoints that do travel as zstd. Both runs share the tenant, so they
// stay in this file, whose tests run one after another.
for (const compressStates of [false, true]) {
  validate<CairnSaver>({
    checkpointerName: `@cairn/client CairnSaver${compressStates ? " (compressStates)" : ""}`,
    async createCheckpointer() {
      await clearTenant();
      return new CairnSaver(privateTarget, { token, compressStates });
    },
    async destroyCheckpointer(saver) {
      saver.close();
      await clearTenant();
    },
  });
}
