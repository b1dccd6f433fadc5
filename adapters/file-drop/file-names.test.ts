import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { classifyFileFailure } from './file-drop.js';
import {
  attachmentFileNames,
  extensionFor,
  isUsableName,
  mainFileName,
  safeFileNamePart,
  unknownPlaceholders,
  workFileNames,
} from './file-names.js';
import { makeDelivery } from './test-support.js';

describe('file-drop adapter: file names', () => {
  it('maps content types to .xml, .json, .txt and .bin', () => {
    expect(extensionFor('application/xml')).to.equal('.xml');
    expect(extensionFor('text/xml; charset=utf-8')).to.equal('.xml');
    expect(extensionFor('application/xdomea+xml')).to.equal('.xml');
    expect(extensionFor('application/json')).to.equal('.json');
    expect(extensionFor('application/problem+JSON')).to.equal('.json');
    expect(extensionFor('text/plain;charset=ISO-8859-1')).to.equal('.txt');
    expect(extensionFor('application/pdf')).to.equal('.bin');
    expect(extensionFor('')).to.equal('.bin');
  });

  it('reduces values to safe characters and transliterates umlauts', () => {
    expect(safeFileNamePart('Größe/Ärger: 50%')).to.equal('Groesse_Aerger__50_');
    expect(safeFileNamePart('..\\..\\windows\\system32')).to.equal('.._.._windows_system32');
    expect(safeFileNamePart('a\u0000b\nc')).to.equal('a_b_c');
    expect(safeFileNamePart('x'.repeat(500))).to.have.length(100);
  });

  it('never produces a name that leaves the directory or hides from the importer', () => {
    for (const reference of [
      '../../etc/passwd',
      '..',
      '.',
      '/etc/shadow',
      '.hidden',
      '..\\..\\boot.ini',
      'a/../../b',
    ]) {
      const name = mainFileName('{reference}{ext}', makeDelivery({ reference }));
      expect(name, reference).not.to.match(/[/\\]/);
      expect(name, reference).not.to.match(/^\./);
      expect(path.dirname(path.join('/drop', name)), reference).to.equal('/drop');
    }
  });

  it('fills every placeholder', () => {
    const name = mainFileName('{ars}-{service}-{reference}-{messageId}-{deliveryId}{ext}', makeDelivery());
    expect(name).to.equal(
      '057110000000-99115005001000-WSA-2026-00042-5d0c7e4a-31b2-4f0e-8a6d-9c1b2e3f4a50-dlv-2b7c9e1f-4d3a-4e8b-a1c2-7f6e5d4c3b2a.xml',
    );
  });

  it('avoids names Windows shares refuse', () => {
    expect(mainFileName('{reference}{ext}', makeDelivery({ reference: 'NUL' }))).to.equal('_NUL.xml');
    expect(attachmentFileNames(['con.pdf', 'COM1'])).to.deep.equal(['_con.pdf', '_COM1']);
  });

  it('tells unusable names and unknown placeholders apart', () => {
    expect(isUsableName('')).to.equal(false);
    expect(isUsableName('.xml')).to.equal(false);
    expect(isUsableName('a'.repeat(201))).to.equal(false);
    expect(isUsableName('antrag.xml')).to.equal(true);
    expect(unknownPlaceholders('{deliveryId}{tenant}{ext}{}')).to.deep.equal(['tenant', '']);
  });

  it('names attachments distinctly, even compared case-insensitively', () => {
    expect(
      attachmentFileNames(['Nachweis.pdf', 'nachweis.pdf', 'NACHWEIS.pdf', '', '...', 'Über uns.docx']),
    ).to.deep.equal([
      'Nachweis.pdf',
      'nachweis-2.pdf',
      'NACHWEIS-3.pdf',
      'attachment-4',
      'attachment-5',
      'Ueber_uns.docx',
    ]);
  });

  it('gives each delivery its own hidden work files, also when ids differ only in unsafe characters', () => {
    const a = workFileNames('dlv/1');
    const b = workFileNames('dlv_1');
    expect(a.main).not.to.equal(b.main);
    for (const name of [...Object.values(a), ...Object.values(b)])
      expect(name.startsWith('.')).to.equal(true);
  });
});

describe('file-drop adapter: failure classification', () => {
  it('retries a full disk later (a real ENOSPC from /dev/full)', () => {
    let enospc: unknown;
    try {
      writeFileSync('/dev/full', 'x');
    } catch (err) {
      enospc = err;
    }
    expect((enospc as NodeJS.ErrnoException).code).to.equal('ENOSPC');
    const error = classifyFileFailure(enospc, '/drop', false);
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.contain('ENOSPC');
  });

  it('retries EACCES, EIO and unknown failures later', () => {
    for (const code of ['EACCES', 'EIO', 'EROFS', 'ESTALE', 'ENOENT', undefined]) {
      const err = Object.assign(new Error('failure'), code ? { code } : {});
      expect(classifyFileFailure(err, '/drop', false).code, String(code)).to.equal('AMT_DELIVERY_RETRYABLE');
    }
  });

  it('rejects a path that cannot be a directory (a real ENOTDIR) permanently', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-file-drop-enotdir-'));
    try {
      writeFileSync(path.join(dir, 'file'), 'x');
      let enotdir: unknown;
      try {
        writeFileSync(path.join(dir, 'file', 'child'), 'y');
      } catch (err) {
        enotdir = err;
      }
      expect(classifyFileFailure(enotdir, dir, false).code).to.equal('AMT_DELIVERY_REJECTED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('retries an aborted write later', () => {
    const error = classifyFileFailure(Object.assign(new Error('x'), { code: 'ENOTDIR' }), '/drop', true);
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
  });
});
