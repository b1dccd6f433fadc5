import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { manifests } from '../adapters/index.js';
import { adapterSection, replaceGeneratedSection } from '../src/adapters-doc.js';

for (const manifest of manifests) {
  const file = fileURLToPath(new URL(`../adapters/${manifest.type}/README.md`, import.meta.url));
  const readme = readFileSync(file, 'utf8');
  let updated: string;
  try {
    updated = replaceGeneratedSection(readme, await adapterSection(manifest, file));
  } catch (err) {
    throw new Error(`adapters/${manifest.type}/README.md: ${(err as Error).message}`, { cause: err });
  }
  if (updated === readme) {
    console.log(`adapters/${manifest.type}/README.md is up to date`);
  } else {
    writeFileSync(file, updated);
    console.log(`adapters/${manifest.type}/README.md written`);
  }
}
