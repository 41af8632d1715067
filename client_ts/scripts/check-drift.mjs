// Regenerates the stubs into a temp dir (same buf.gen.yaml as `npm run gen`) and fails when they differ
// from the committed src/gen/.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const committed = join(root, "src", "gen");
const tmp = mkdtempSync(join(tmpdir(), "cairn-ts-gen-"));
try {
  execFileSync(join(root, "node_modules", ".bin", "buf"), ["generate", "--output", tmp], { cwd: root, stdio: "inherit" });
  const fresh = join(tmp, "src", "gen");
  const files = (dir) =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)))
      .sort();
  const a = files(committed);
  const b = files(fresh);
  const differ = [...new Set([...a, ...b])].filter(
    (f) => !a.includes(f) || !b.includes(f) || !readFileSync(join(committed, f)).equals(readFileSync(join(fresh, f))),
  );
  if (differ.length > 0) {
    console.error(`src/gen is stale (run \`npm run gen\` and commit): ${differ.join(", ")}`);
    process.exit(1);
  }
  console.log(`src/gen is up to date (${a.length} files)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
