import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CloseCodes, ErrorCodes, clientFrameTypes, serverFrameTypes, messageKinds } from '../src/index.ts';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

/** Rows of the markdown table that follows `heading`. */
function tableRows(heading: string): string[][] {
  const start = doc.indexOf(heading);
  assert.ok(start >= 0, `docs/protocol.md has a "${heading}" section`);
  const lines = doc.slice(start).split('\n');
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines.slice(1)) {
    if (line.startsWith('|')) {
      inTable = true;
      if (/^\|[-| ]+\|$/.test(line)) continue;
      rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
    } else if (inTable) break;
  }
  return rows.slice(1);
}

const firstCells = (heading: string) => tableRows(heading).map((r) => r[0]!.replaceAll('`', ''));

describe('docs/protocol.md matches the protocol package', () => {
  it('documents exactly the client frame types', () => {
    assert.deepEqual(firstCells('### Client frames').sort(), [...clientFrameTypes].sort());
  });
  it('documents exactly the server frame types', () => {
    assert.deepEqual(firstCells('### Server frames').sort(), [...serverFrameTypes].sort());
  });
  it('documents every error code with its HTTP status and retry flag', () => {
    const rows = tableRows('## Error codes');
    assert.deepEqual(rows.map((r) => r[0]!.replaceAll('`', '')).sort(), Object.keys(ErrorCodes).sort());
    for (const r of rows) {
      const spec = ErrorCodes[r[0]!.replaceAll('`', '') as keyof typeof ErrorCodes];
      assert.equal(Number(r[1]), spec.status, `${r[0]} status`);
      assert.equal(r[2], spec.retry ? 'yes' : 'no', `${r[0]} retry`);
    }
  });
  it('documents every close code with its number and reconnect rule', () => {
    const rows = tableRows('## Close codes');
    assert.equal(rows.length, Object.keys(CloseCodes).length);
    for (const r of rows) {
      const spec = CloseCodes[r[1]!.replaceAll('`', '') as keyof typeof CloseCodes];
      assert.ok(spec, `close ${r[1]} exists`);
      assert.equal(Number(r[0]), spec.code);
      assert.equal(r[2], spec.reconnect ? 'yes' : 'no');
    }
  });
  it('documents every registered message kind', () => {
    const documented = firstCells('### Message kinds');
    for (const k of messageKinds()) assert.ok(documented.includes(k), `kind ${k} documented`);
  });
});
