/**
 * Cross-language round trip with the Python client (tests/crosslang/peer.py): a checkpoint saved by
 * Python loads byte for byte in TypeScript, and one saved by TypeScript loads byte for byte in Python.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { newThread, sharedClient, target } from "./helpers.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const peerScript = `${repo}tests/crosslang/peer.py`;
const canonical = readFileSync(`${repo}tests/crosslang/state.json`);
const client = sharedClient();

/** Runs peer.py and parses the one JSON line it prints. */
function peer(...args: string[]): Record<string, unknown> {
  const out = execFileSync(process.env.CAIRN_PYTHON || "python3", [peerScript, ...args, "--target", target()], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim());
}

it("loads a checkpoint saved by Python with identical state bytes", async () => {
  const threadId = newThread("xlang-py");
  const saved = peer("save", "--thread", threadId);
  expect(Buffer.from(saved.state_b64 as string, "base64").equals(canonical)).toBe(true);

  const { checkpoint } = await client.load({ threadId });
  expect(checkpoint.checkpointId).toBe(saved.checkpoint_id);
  expect(Buffer.from(checkpoint.state).equals(canonical)).toBe(true);
  expect(JSON.parse(Buffer.from(checkpoint.state).toString("utf8"))).toEqual(JSON.parse(canonical.toString("utf8")));
  expect(checkpoint).toMatchObject({ stateType: "json", metadata: { lang: "python" }, nodeName: "py", nextNodes: ["next"] });
});

it("saves a checkpoint that Python loads with identical state bytes", async () => {
  const threadId = newThread("xlang-ts");
  const { checkpointId } = await client.save({
    threadId,
    state: canonical,
    stateType: "json",
    metadata: { lang: "typescript" },
    nodeName: "ts",
    nextNodes: ["next"],
  });
  const loaded = peer("load", "--thread", threadId, "--checkpoint", checkpointId);
  expect(Buffer.from(loaded.state_b64 as string, "base64").equals(canonical)).toBe(true);
  expect(loaded).toMatchObject({
    checkpoint_id: checkpointId,
    state_type: "json",
    metadata: { lang: "typescript" },
    node_name: "ts",
    next_nodes: ["next"],
  });
});
