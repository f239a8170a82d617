// Build the classroom page: src/main.js + src/style.css -> dist/app.js + dist/app.css.
// Deterministic: the same sources and lock file give the same bytes.
// `node build.mjs --check` builds into a temporary folder and fails when dist/ differs.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const check = process.argv.includes('--check')
const outdir = check ? mkdtempSync(join(tmpdir(), 'ocl-web-')) : join(here, 'dist')

await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js' },
  outdir,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome105', 'firefox110', 'safari16'],
  platform: 'browser',
  legalComments: 'none',
  sourcemap: false,
  charset: 'utf8',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' }
})

if (check) {
  const committed = join(here, 'dist')
  const names = (dir) => readdirSync(dir).filter((n) => !n.startsWith('.')).sort()
  const fresh = names(outdir)
  let have = []
  try { have = names(committed) } catch { /* no dist yet */ }
  const problems = []
  for (const n of new Set([...fresh, ...have])) {
    if (!fresh.includes(n)) problems.push(`web/dist/${n} is not produced by the sources`)
    else if (!have.includes(n)) problems.push(`web/dist/${n} is missing`)
    else if (!readFileSync(join(outdir, n)).equals(readFileSync(join(committed, n)))) {
      problems.push(`web/dist/${n} differs from a fresh build`)
    }
  }
  rmSync(outdir, { recursive: true, force: true })
  if (problems.length) {
    console.error(problems.join('\n') + '\nThe committed bundle is stale: run `make web` and commit web/dist.')
    process.exit(1)
  }
  console.log('web/dist matches the sources')
}
