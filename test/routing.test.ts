import { expect } from 'chai';
import type { RouteConfig } from '../src/config/types.js';
import { createRouter } from '../src/routing.js';

const retry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1, multiplier: 2, jitter: 0 };
function route(id: string, ars: string, service: string, adapter: string, channel?: string): RouteConfig {
  return { id, ars, service, adapter, channel, mapping: undefined, retry };
}

describe('routing', () => {
  const router = createRouter({
    tenants: [
      { id: 'muenster', name: 'Stadt Münster', ars: '055150000000' },
      { id: 'telgte', name: 'Stadt Telgte', ars: '055700040040' },
    ],
    routes: [
      route('nrw-wide', '05', '99058012104000', 'efa'),
      route('kreis-warendorf', '05570', '99058012104000', 'kreis-fv'),
      route('muenster', '055150000000', '99058012104000', 'ms-dms'),
      route('muenster-app', '055150000000', '99058012104000', 'ms-app', 'app'),
      route('other-service', '05', '99102013001000', 'other'),
    ],
  });

  it('picks the most specific ARS prefix', () => {
    expect(router.resolve('055150000000', '99058012104000')?.id).to.equal('muenster');
    expect(router.resolve('055700040040', '99058012104000')?.id).to.equal('kreis-warendorf');
    expect(router.resolve('057110000000', '99058012104000')?.id).to.equal('nrw-wide');
  });

  it('prefers a route naming the channel, and ignores channel routes for other channels', () => {
    expect(router.resolve('055150000000', '99058012104000', 'app')?.id).to.equal('muenster-app');
    expect(router.resolve('055150000000', '99058012104000', 'web')?.id).to.equal('muenster');
  });

  it('finds nothing for another Land or an unknown service', () => {
    expect(router.resolve('091620000000', '99058012104000')).to.equal(undefined);
    expect(router.resolve('055150000000', '99999999999999')).to.equal(undefined);
  });

  it('looks tenants up by exact ARS, keeping the leading zero', () => {
    expect(router.tenantByArs('055150000000')?.id).to.equal('muenster');
    expect(router.tenantByArs('55150000000')).to.equal(undefined);
    expect(router.tenantById('telgte')?.ars).to.equal('055700040040');
  });
});
