import { expect } from 'chai';
import { createTask } from 'node-cron';
import { CronSchedule, isValidCronExpression, isValidTimezone } from '../../src/scheduler/cron.js';

const BERLIN = 'Europe/Berlin';
const MINUTE = 60_000;

function occurrences(schedule: CronSchedule, from: string, to: string): string[] {
  const end = Date.parse(to);
  const found: string[] = [];
  for (let t = schedule.next(Date.parse(from)); t !== undefined && t < end; t = schedule.next(t)) {
    found.push(new Date(t).toISOString());
  }
  return found;
}

/** The local calendar date of an instant in Berlin. */
function berlinDate(iso: string): string {
  return new Intl.DateTimeFormat('sv-SE', { timeZone: BERLIN }).format(new Date(iso));
}

describe('cron schedule', () => {
  describe('daylight saving time in Europe/Berlin', () => {
    const daily = new CronSchedule('30 2 * * *', BERLIN);

    it('runs a daily 02:30 once on 2026-03-29, when 02:00 jumps to 03:00: at 03:00 CEST', () => {
      const runs = occurrences(daily, '2026-03-27T12:00:00Z', '2026-03-31T12:00:00Z');
      expect(runs).to.deep.equal([
        '2026-03-28T01:30:00.000Z', // 02:30 CET
        '2026-03-29T01:00:00.000Z', // 02:30 does not exist: the gap ends at 03:00 CEST
        '2026-03-30T00:30:00.000Z', // 02:30 CEST
        '2026-03-31T00:30:00.000Z',
      ]);
      expect(runs.map(berlinDate)).to.deep.equal(['2026-03-28', '2026-03-29', '2026-03-30', '2026-03-31']);
    });

    it('runs a daily 02:30 once on 2026-10-25, when 03:00 falls back to 02:00: at the first 02:30', () => {
      const runs = occurrences(daily, '2026-10-23T12:00:00Z', '2026-10-27T12:00:00Z');
      expect(runs).to.deep.equal([
        '2026-10-24T00:30:00.000Z', // 02:30 CEST
        '2026-10-25T00:30:00.000Z', // 02:30 CEST; 02:30 CET (01:30Z) follows an hour later and is not run
        '2026-10-26T01:30:00.000Z', // 02:30 CET
        '2026-10-27T01:30:00.000Z',
      ]);
      expect(runs.map(berlinDate)).to.deep.equal(['2026-10-24', '2026-10-25', '2026-10-26', '2026-10-27']);
    });

    it('keeps a schedule of every 15 minutes on real time across both changes', () => {
      const quarter = new CronSchedule('*/15 * * * *', BERLIN);
      for (const [from, to] of [
        ['2026-03-29T00:00:00Z', '2026-03-29T03:00:00Z'],
        ['2026-10-24T23:00:00Z', '2026-10-25T03:00:00Z'],
      ] as const) {
        const runs = occurrences(quarter, from, to).map((iso) => Date.parse(iso));
        const expected = (Date.parse(to) - Date.parse(from)) / (15 * MINUTE) - 1;
        expect(runs).to.have.length(expected);
        runs.slice(1).forEach((t, i) => expect(t - runs[i]!).to.equal(15 * MINUTE));
      }
    });

    it('answers previous() consistently with next() on both days', () => {
      expect(daily.previous(Date.parse('2026-03-29T12:00:00Z'))).to.equal(Date.parse('2026-03-29T01:00:00Z'));
      expect(daily.previous(Date.parse('2026-03-29T00:59:59Z'))).to.equal(Date.parse('2026-03-28T01:30:00Z'));
      expect(daily.previous(Date.parse('2026-10-25T01:30:00Z'))).to.equal(Date.parse('2026-10-25T00:30:00Z'));
    });
  });

  it('reads the schedule in its own time zone', () => {
    const at = (timezone: string) =>
      new CronSchedule('0 9 * * 1-5', timezone).next(Date.parse('2026-01-09T12:00:00Z'));
    // Friday 9 January, 12:00 UTC: past 09:00 in Berlin and UTC (next: Monday), not yet in New York
    expect(new Date(at(BERLIN)!).toISOString()).to.equal('2026-01-12T08:00:00.000Z');
    expect(new Date(at('America/New_York')!).toISOString()).to.equal('2026-01-09T14:00:00.000Z');
    expect(new Date(at('UTC')!).toISOString()).to.equal('2026-01-12T09:00:00.000Z');
    const summer = new CronSchedule('0 9 * * *', BERLIN).next(Date.parse('2026-07-01T00:00:00Z'));
    expect(new Date(summer!).toISOString()).to.equal('2026-07-01T07:00:00.000Z');
  });

  it('supports seconds as a sixth field, next strictly after and previous at or before', () => {
    const everyTen = new CronSchedule('*/10 * * * * *', BERLIN);
    const t = Date.parse('2026-05-05T10:00:20Z');
    expect(everyTen.next(t)).to.equal(t + 10_000);
    expect(everyTen.next(t - 1)).to.equal(t);
    expect(everyTen.previous(t)).to.equal(t);
    expect(everyTen.previous(t - 1)).to.equal(t - 10_000);
  });

  it('agrees with node-cron on which instants match, for the whole grammar', () => {
    // Probes far from any DST change (Berlin is on CET from January to 28 March), where
    // node-cron's matcher is exact: every probe node-cron matches must be one of our
    // occurrences and every occurrence must be a probe node-cron matches. Fixed-time schedules
    // are probed once a day at their time, the others every minute or second.
    const DAY = 24 * 60 * MINUTE;
    const winter = (firstProbe: string) => ({
      from: Date.parse(firstProbe),
      to: Date.parse('2026-03-28T00:00:00Z'),
      step: DAY,
    });
    const cases: { expression: string; from: number; to: number; step: number }[] = [
      {
        expression: '*/7 3-5 * * *',
        from: Date.parse('2026-01-05T00:00:00Z'),
        to: Date.parse('2026-01-07T00:00:00Z'),
        step: MINUTE,
      },
      {
        expression: '45 */5 1-3 * * *',
        from: Date.parse('2026-01-05T00:00:00Z'),
        to: Date.parse('2026-01-05T04:00:00Z'),
        step: 1000,
      },
      { expression: '0 12 L * *', ...winter('2026-01-01T11:00:00Z') },
      { expression: '0 8 15W * *', ...winter('2026-01-01T07:00:00Z') },
      { expression: '0 8 LW * *', ...winter('2026-01-01T07:00:00Z') },
      { expression: '30 6 L-2 * *', ...winter('2026-01-01T05:30:00Z') },
      { expression: '0 9 * * 5L', ...winter('2026-01-01T08:00:00Z') },
      { expression: '0 9 * * 2#3', ...winter('2026-01-01T08:00:00Z') },
      { expression: '0 0 1,15 jan,feb *', ...winter('2025-12-31T23:00:00Z') },
      { expression: '15 10 * * sat,sun', ...winter('2026-01-01T09:15:00Z') },
      { expression: '@daily', ...winter('2025-12-31T23:00:00Z') },
    ];
    for (const { expression, from, to, step } of cases) {
      const schedule = new CronSchedule(expression, BERLIN);
      const oracle = createTask(expression, () => undefined, { timezone: BERLIN });
      try {
        const ours: number[] = [];
        for (let t = schedule.next(from - 1); t !== undefined && t < to; t = schedule.next(t)) ours.push(t);
        const matched: number[] = [];
        for (let t = from; t < to; t += step) if (oracle.match(new Date(t))) matched.push(t);
        expect(ours.length, expression).to.be.greaterThan(1);
        expect(
          ours.map((t) => new Date(t).toISOString()),
          expression,
        ).to.deep.equal(matched.map((t) => new Date(t).toISOString()));
        ours.slice(1).forEach((t, i) => expect(schedule.previous(t - 1), expression).to.equal(ours[i]));
      } finally {
        discard(oracle);
      }
    }
  });

  it('rejects expressions and zones that are not valid', () => {
    expect(isValidCronExpression('*/5 * * * *')).to.equal(true);
    expect(isValidCronExpression('61 * * * *')).to.equal(false);
    expect(isValidCronExpression('every day')).to.equal(false);
    expect(isValidTimezone('Europe/Berlin')).to.equal(true);
    expect(isValidTimezone('Europe/Bonn')).to.equal(false);
    expect(() => new CronSchedule('* * *', BERLIN)).to.throw(/not a cron expression/);
    expect(() => new CronSchedule('* * * * *', 'Mars/Olympus')).to.throw(/unknown time zone/);
  });
});

function discard(task: ReturnType<typeof createTask>): void {
  void task.destroy();
}
