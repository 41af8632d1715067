/**
 * Real crashes of real LangGraph.js processes: a graph a -> b -> c -> d, run by a child process
 * (test/langgraph-crash-worker.mjs) that is SIGKILLed inside node c, then resumed by a new process, under each
 * of LangGraph's durability modes. The same scenario runs on CairnSaver and on LangGraph.js's own MemorySaver
 * (the reference, its storage written to a file after each call so it outlives the process), and what the new
 * process finds, the resumed result, the history and how often each node finished must be the same.
 * LangGraph loses what it had not saved ("async": the checkpoint in flight at the kill, though the writes saved
 * before it are replayed; "exit": the whole run, which starts again), and Cairn follows that rule exactly. The
 * Python twin is tests/test_langgraph_crash.py (with LangGraph's SqliteSaver as the reference).
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { newThread, target } from "./helpers.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const worker = `${root}test/langgraph-crash-worker.mjs`;
// The child processes load the saver as plain JavaScript: compiled here, inside node_modules so that its
// imports resolve to this package's dependencies.
const built = `${root}node_modules/.cache/cairn-test-dist`;
const env = { ...process.env, CAIRN_SAVER_MODULE: `${built}/langgraph.js` };
let dir: string;

beforeAll(() => {
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", `${root}tsconfig.build.json`, "--outDir", built], {
    stdio: "inherit",
  });
  dir = mkdtempSync(join(tmpdir(), "cairn-lg-crash-"));
}, 120_000);

/** Runs the crash phase until the worker is inside c, then SIGKILLs it. */
function crash(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker, "crash", ...args], { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("INSIDE c\n")) child.kill("SIGKILL");
    });
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" && out.includes("INSIDE c")) resolve();
      else reject(new Error(`crash worker ended with code ${code}, signal ${signal}: ${out}`));
    });
  });
}

async function crashAndResume(kind: "cairn" | "memory", durability: string) {
  const where = kind === "cairn" ? target() : join(dir, `memory-${durability}.json`);
  const log = join(dir, `${kind}-${durability}.log`);
  const args = [kind, where, newThread(`lg-crash-${durability}`), durability, log];
  await crash(args);
  const out = execFileSync(process.execPath, [worker, "resume", ...args], { env, encoding: "utf8" });
  const finished: Record<string, number> = {};
  for (const node of readFileSync(log, "utf8").split("\n").filter(Boolean)) finished[node] = (finished[node] ?? 0) + 1;
  return { ...JSON.parse(out), finished };
}

describe.each(["sync", "async", "exit"])("durability %s", (durability) => {
  it("a crash inside a node, then a resume in a new process, ends as on LangGraph.js's MemorySaver", async () => {
    const cairn = await crashAndResume("cairn", durability);
    const memory = await crashAndResume("memory", durability);
    expect(cairn).toEqual(memory);

    expect(cairn.result).toEqual({ log: ["input", "a", "b", "c", "d"] });
    const after = cairn.after_crash;
    const nexts = after.history.map((h: { next: string[] }) => h.next);
    if (durability === "sync") {
      expect(after).toMatchObject({ values: { log: ["input", "a", "b"] }, next: ["c"] });
      expect(cairn.finished).toEqual({ a: 1, b: 1, c: 1, d: 1 });
    } else if (durability === "async") {
      expect(nexts).toEqual([["__start__"], ["a"], ["b"]]); // the checkpoint after b was lost
      expect(after).toMatchObject({ values: { log: ["input", "a", "b"] }, next: [] }); // b's writes were saved
      expect(cairn.finished).toEqual({ a: 1, b: 1, c: 1, d: 1 });
    } else {
      expect(after).toEqual({ values: {}, next: [], history: [] });
      expect(cairn.finished).toEqual({ a: 2, b: 2, c: 1, d: 1 });
      expect(cairn.history.map((h: { step: number }) => h.step)).toEqual([4]);
    }
  });
});
