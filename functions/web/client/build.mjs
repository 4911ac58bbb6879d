// Builds the client into ../static: hashed assets (immutable), index.html (no-cache) naming them, and
// manifest.json with the digest of the sources, which tests/unit/test_web_bundle.py recomputes to say
// when the committed bundle is older than its sources (functions/web/client/sources.json lists them).
import { createHash } from "node:crypto";
import { readFileSync, rmSync, mkdirSync, writeFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, basename } from "node:path";
import * as esbuild from "esbuild";

const here = new URL(".", import.meta.url).pathname;
const out = join(here, "..", "static");

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

// The digest the unit test recomputes: every source file, sorted by path, as "path\0bytes\0".
export function sourcesDigest() {
  const paths = [...files(join(here, "src")), ...["package.json", "package-lock.json", "build.mjs", "tsconfig.json"].map((p) => join(here, p))];
  const hash = createHash("sha256");
  for (const path of paths.map((p) => relative(here, p)).sort()) {
    hash.update(path + "\0");
    hash.update(readFileSync(join(here, path)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
const result = await esbuild.build({
  entryPoints: [join(here, "src", "main.ts")],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm",
  target: ["es2020"],
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  // The Natural Earth base map is its own file, fetched after the first paint.
  loader: { ".png": "file", ".svg": "file", ".json": "file" },
  publicPath: "/assets",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((p) => relative(out, join(process.cwd(), p)));
const script = outputs.find((p) => p.endsWith(".js"));
const style = outputs.find((p) => p.endsWith(".css"));
const html = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("%STYLE%", `/${style}`)
  .replace("%SCRIPT%", `/${script}`);
writeFileSync(join(out, "index.html"), html);
const manifest = {
  sources: sourcesDigest(),
  files: files(out).map((p) => relative(out, p)).sort(),
  note: "built by `make web` (functions/web/client/build.mjs); do not edit",
};
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`built ${manifest.files.length} files into ${relative(process.cwd(), out) || "."}: ${basename(script)}`);
