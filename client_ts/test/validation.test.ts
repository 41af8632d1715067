/**
 * LangGraph.js's own checkpointer validation suite (@langchain/langgraph-checkpoint-validation), unchanged:
 * every test of getTuple, list, put, putWrites and deleteThread, run through its `validate()` entry point
 * (the same spec its `validate-checkpointer` CLI runs) against a real Cairn server.
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

validate<CairnSaver>({
  checkpointerName: "@cairn/client CairnSaver",
  async createCheckpointer() {
    await clearTenant();
    return new CairnSaver(privateTarget, { token });
  },
  async destroyCheckpointer(saver) {
    saver.close();
    await clearTenant();
  },
});
