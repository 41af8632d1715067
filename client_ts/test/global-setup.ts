/**
 * Cairn servers for the test run (real `cairn serve` processes, never mocks).
 *
 * - The shared server: $CAIRN_TARGET when set; otherwise a `cairn serve` started here (embedded default:
 *   in-process cache + SQLite in a temp dir, free port). Client, graph and cross-language tests use it.
 * - A private server for LangGraph's validation suite, which lists checkpoints across all threads and uses
 *   fixed thread ids ("1", "thread-1"), so it needs a store nobody else writes to. It listens on a unix
 *   socket and requires a bearer token mapped to a fresh tenant; with $CAIRN_TEST_POSTGRES_DSN and
 *   $CAIRN_TEST_REDIS_URL set it runs on those (the tenant keeps it apart), else on a temp SQLite file.
 * - A mutual-TLS server (certificates made with openssl for this run) for the client's `tls` option; left
 *   out (its test skipped) when openssl is missing.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    cairnTarget: string;
    privateTarget: string;
    privateToken: string;
    privateError: string;
    tlsTarget: string;
    tlsDir: string;
  }
}

const HOW_TO =
  "set CAIRN_TARGET=host:port of a running Cairn server, or install the server (`pip install -e '.[server]'` " +
  "in the repository root) so the tests can start `cairn serve` themselves";

interface Started {
  proc: ChildProcess;
  dir: string;
}
const started: Started[] = [];

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cairn = process.env.CAIRN_BIN || "cairn";
  const haveCairn = spawnSync(cairn, ["--help"], { stdio: "ignore" }).status === 0;
  let target = process.env.CAIRN_TARGET ?? "";
  if (!target) {
    if (!haveCairn) throw new Error(`No Cairn server for the tests: ${HOW_TO}`);
    const port = await freePort();
    target = `127.0.0.1:${port}`;
    await startServer(cairn, [`--listen`, target], { host: "127.0.0.1", port });
  }
  project.provide("cairnTarget", target);

  const token = randomUUID();
  let privateTarget = "";
  let privateError = "";
  if (haveCairn) {
    const dir = mkdtempSync(join(tmpdir(), "cairn-ts-sock-"));
    const sock = join(dir, "cairn.sock");
    const cold = process.env.CAIRN_TEST_POSTGRES_DSN && process.env.CAIRN_TEST_REDIS_URL
      ? ["--postgres-dsn", process.env.CAIRN_TEST_POSTGRES_DSN, "--redis-url", process.env.CAIRN_TEST_REDIS_URL]
      : [];
    const args = ["--listen", `unix:${sock}`, "--auth-tokens", `${token} ts-validation-${token}`, ...cold];
    await startServer(cairn, args, { path: sock }, dir);
    privateTarget = `unix:${sock}`;
  } else {
    privateError = `LangGraph's validation suite needs a private Cairn server and \`${cairn}\` is not installed: ${HOW_TO}`;
  }
  project.provide("privateTarget", privateTarget);
  project.provide("privateToken", token);
  project.provide("privateError", privateError);

  let tlsTarget = "";
  let tlsDir = "";
  if (haveCairn && spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0) {
    tlsDir = mkdtempSync(join(tmpdir(), "cairn-ts-tls-"));
    makeCertificates(tlsDir);
    const port = await freePort();
    tlsTarget = `localhost:${port}`; // a host name, as TLS server name indication wants
    const pem = (name: string) => join(tlsDir, name);
    const tlsArgs = ["--tls-cert", pem("server.crt"), "--tls-key", pem("server.key"), "--tls-client-ca", pem("ca.crt")];
    await startServer(cairn, ["--listen", `127.0.0.1:${port}`, ...tlsArgs], { host: "127.0.0.1", port }, tlsDir);
  }
  project.provide("tlsTarget", tlsTarget);
  project.provide("tlsDir", tlsDir);

  return async () => {
    for (const { proc, dir } of started.reverse()) {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once("exit", resolve));
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files in `dir`. */
function makeCertificates(dir: string): void {
  const ssl = (...args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
  };
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl("req", "-x509", ...key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=cairn-test-ca");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const who of ["server", "client"]) {
    ssl("req", ...key, "-keyout", `${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=${who === "server" ? "localhost" : "client"}`);
    ssl("x509", "-req", "-in", `${who}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
      "-out", `${who}.crt`, "-days", "2", "-extfile", `${who}.ext`);
  }
}

/** Starts `cairn serve` with a temp SQLite file and waits until it accepts connections. */
async function startServer(
  cairn: string,
  args: string[],
  address: { host: string; port: number } | { path: string },
  dir = mkdtempSync(join(tmpdir(), "cairn-ts-")),
): Promise<void> {
  const log = join(dir, "server.log");
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CAIRN_")));
  const all = ["serve", "--sqlite-path", join(dir, "cairn.db"), "--log-level", "WARNING", ...args];
  const out = openSync(log, "a");
  const proc = spawn(cairn, all, { env, stdio: ["ignore", out, out] });
  closeSync(out);
  started.push({ proc, dir });
  for (let i = 0; i < 600; i++) {
    if (proc.exitCode !== null) break;
    if (await accepts(address)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = (() => {
    try {
      return readFileSync(log, "utf8").slice(-2000);
    } catch {
      return "";
    }
  })();
  throw new Error(`cairn serve ${args.join(" ")} did not start (exit code ${proc.exitCode}):\n${tail}`);
}

function accepts(address: { host: string; port: number } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(address as never);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
