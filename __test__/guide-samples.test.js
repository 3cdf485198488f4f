'use strict';
// Every ```javascript and ```typescript sample of docs/guide.md and README.md compiles against
// index.d.ts under `strict`, JavaScript ones with `checkJs`. In JavaScript, only what needs a
// type annotation is let go: implicit `any` (TS7xxx) and using a value typed `unknown`
// (TS18046, e.g. a caught error), since JavaScript has no annotations. All samples go into
// one TypeScript program, so the test stays fast.
//
// A sample is a file of its own: CommonJS (.cjs) if it calls require(), otherwise an ES
// module (.mjs/.mts, top-level await allowed). A sample that is a value (it starts with `{` or
// `[`) is checked as an expression. Besides what it defines itself, a sample may use only the
// names of PRELUDE: the package's exports and the `provider`, `client` and `runtime` the
// guide's quick start sets up.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');
const { tempDir } = require('./helpers');

const ROOT = path.join(__dirname, '..');
const DOCUMENTS = ['docs/guide.md', 'README.md'];
const LANGUAGES = { javascript: 'js', js: 'js', typescript: 'ts', ts: 'ts' };

const PRELUDE = `import type * as reprise from 'reprise';
declare global {
  var SqliteProvider: typeof reprise.SqliteProvider;
  var PostgresProvider: typeof reprise.PostgresProvider;
  var Client: typeof reprise.Client;
  var Runtime: typeof reprise.Runtime;
  var defineActivity: typeof reprise.defineActivity;
  var TaskFailedError: typeof reprise.TaskFailedError;
  var provider: reprise.SqliteProvider;
  var client: reprise.Client;
  var runtime: reprise.Runtime;
}
export {};
`;
/** The module the guide's worker.mjs sample imports its registrations from. */
const FLOWS = `/** @param {import('reprise').Runtime} runtime */
export function registerEverything(runtime) {}
`;
/** Must fail: proves the program checks JavaScript samples against index.d.ts. */
const CONTROL = "runtime.registerOrchestration('Control', 42);\n";

/** The fenced code samples of a Markdown document: {lang, code, line (of the first code line)}. */
function samples(document) {
  const lines = fs.readFileSync(path.join(ROOT, document), 'utf8').split('\n');
  const found = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, lang] = open;
    let end = i + 1;
    while (end < lines.length && lines[end].trim() !== '```') end++;
    assert.ok(end < lines.length, `${document}:${i + 1}: unclosed code block`);
    if (LANGUAGES[lang]) {
      const code = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l)).join('\n');
      found.push({ lang: LANGUAGES[lang], code, line: i + 2 });
    }
    i = end;
  }
  return found;
}

/** Writes the samples and the prelude to a fresh folder; compiles them as one program once. */
let compiled;
function compile() {
  if (compiled) return compiled;
  const dir = tempDir();
  const files = [];
  const write = (name, text, origin) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    files.push({ file, ...origin });
  };
  write('prelude.d.ts', PRELUDE, { document: 'prelude' });
  write('flows.mjs', FLOWS, { document: 'prelude' });
  write('control.mjs', CONTROL, { document: 'control' });
  const counts = {};
  for (const document of DOCUMENTS) {
    counts[document] = 0;
    for (const sample of samples(document)) {
      const value = /^\s*[{[]/.test(sample.code);
      const code = value ? `void (\n${sample.code}\n);\n` : `${sample.code}\n`;
      const kind = sample.lang === 'ts' ? '.mts' : /\brequire\(/.test(sample.code) ? '.cjs' : '.mjs';
      const name = `${document.replace(/\W/g, '_')}_${sample.line}${kind}`;
      write(name, code, { document, line: sample.line, shift: value ? 1 : 0 });
      counts[document]++;
    }
  }
  const options = {
    strict: true,
    noEmit: true,
    allowJs: true,
    checkJs: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    typeRoots: [path.join(ROOT, 'node_modules', '@types')],
    paths: { reprise: [path.join(ROOT, 'index.d.ts')] },
  };
  const program = ts.createProgram(files.map((f) => f.file), options);
  const byFile = new Map(files.map((f) => [f.file, f]));
  const problems = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const origin = d.file && byFile.get(path.resolve(d.file.fileName));
    if (!origin) {
      problems.push({ document: 'other', where: d.file ? d.file.fileName : '(global)', text, code: d.code });
      continue;
    }
    // JavaScript has no annotations: implicit `any` and untyped use of `unknown` are how it is written.
    if (/\.(mjs|cjs)$/.test(origin.file) && ((d.code >= 7000 && d.code < 8000) || d.code === 18046)) continue;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    const where = origin.line === undefined
      ? `${path.basename(origin.file)}:${line + 1}`
      : `${origin.document}:${origin.line + line - origin.shift}:${character + 1}`;
    problems.push({ document: origin.document, where, text, code: d.code });
  }
  compiled = { problems, counts };
  return compiled;
}

const report = (problems) => problems.map((p) => `${p.where}: TS${p.code} ${p.text}`).join('\n');

test('the program checks JavaScript samples against the typings (a wrong call is reported)', () => {
  const { problems } = compile();
  const control = problems.filter((p) => p.document === 'control');
  assert.equal(control.length, 1, report(control));
  assert.match(control[0].text, /not assignable to parameter of type 'OrchestrationFunction/);
  assert.deepEqual(problems.filter((p) => p.document === 'other' || p.document === 'prelude'), []);
});

for (const document of DOCUMENTS) {
  test(`every JavaScript and TypeScript sample of ${document} compiles under strict`, () => {
    const { problems, counts } = compile();
    assert.ok(counts[document] >= (document === 'README.md' ? 4 : 30), `only ${counts[document]} samples found in ${document}`);
    const mine = problems.filter((p) => p.document === document);
    assert.equal(mine.length, 0, `\n${report(mine)}`);
  });
}
