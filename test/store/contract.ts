/**
 * The store contract test suite. Every `Store` implementation runs it unchanged; it uses only
 * the public `Store` interface.
 */
import { expect } from 'chai';
import type { Store } from '../../src/store/types.js';

export function describeStoreContract(
  name: string,
  open: () => Promise<Store>,
  cleanup?: (s: Store) => Promise<void>,
): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });

    afterEach(async () => {
      if (cleanup) await cleanup(store);
      else await store.close();
    });

    it('answers ping', async () => {
      await store.ping();
      const stats = await store.stats();
      expect(stats.byStatus.received).to.equal(0);
    });
  });
}
