/** What the status bar and the panel say about an allocation (src/format.ts). */
import { nullTranslator } from '@jupyterlab/translation';

import { cullingText, figureText, fraction, hours, readAtText, remainingText, walltimeText } from '../src/format';
import { ICentreQuota } from '../src/model';

// English, as JupyterLab shows it when no language pack is chosen
const trans = nullTranslator.load('fedhub_lab');

const entry = (core: Partial<ICentreQuota['core_hours']> | null, error?: string): ICentreQuota =>
  ({ centre: 'alpha', name: 'Alpha', level: 'ok', error, core_hours: core }) as unknown as ICentreQuota;

describe('hours', () => {
  it('shows one decimal below 100 and none above, a dash when unknown', () => {
    expect(hours(41.46)).toBe('41.5');
    expect(hours(250.4)).toBe('250');
    expect(hours(null)).toBe('–');
    expect(hours(undefined)).toBe('–');
  });
});

describe('remainingText', () => {
  it('says what is left and how much is used', () => {
    expect(remainingText(entry({ used: 8.5, limit: 50, remaining: 41.5, percent: 17 }), trans)).toBe(
      '41.5 core-h left (17% used)'
    );
  });
  it('works out what is left when the service did not', () => {
    expect(remainingText(entry({ used: 60, limit: 50, percent: 120 }), trans)).toBe('0.0 core-h left (120% used)');
  });
  it('says when there is no limit, no figures yet, or none available', () => {
    expect(remainingText(entry({ used: 3, limit: null }), trans)).toBe('3.0 core-h used, no limit');
    expect(remainingText(entry(null), trans)).toBe('no figures yet');
    expect(remainingText(entry(null, 'sacct did not answer'), trans)).toBe('figures not available');
  });
});

describe('cullingText', () => {
  it('says what stopping idle servers gave back this period, and nothing when none was stopped', () => {
    const culled = (servers: number, hoursBack: number) =>
      ({
        ...entry({ used: 1, limit: 50 }),
        culling: { core_hours_returned: hoursBack, servers_culled: servers }
      }) as ICentreQuota;
    expect(cullingText(culled(2, 3.46), trans)).toBe('Idle servers stopped this period (2) gave back 3.5 core-h');
    expect(cullingText(culled(1, 0.31), trans)).toBe('Idle server stopped this period gave back 0.3 core-h');
    expect(cullingText(culled(0, 0), trans)).toBe('');
    expect(cullingText(entry({ used: 1, limit: 50 }), trans)).toBe('');
  });
});

describe('figureText and fraction', () => {
  it('reads a figure of the panel', () => {
    expect(figureText({ used: 12, limit: 50 } as any, 'core-h', trans)).toBe('12.0 of 50.0 core-h');
    expect(figureText({ used: 2, limit: null } as any, 'GB', trans)).toBe('2.0 GB used, no limit');
    expect(figureText(undefined, 'GB', trans)).toBe('not reported');
  });
  it('gives the bar its length, capped at full', () => {
    expect(fraction({ used: 25, limit: 50 } as any)).toBe(0.5);
    expect(fraction({ used: 75, limit: 50 } as any)).toBe(1);
    expect(fraction({ used: 5, limit: null } as any)).toBeNull();
    expect(fraction({ used: 5, limit: 0 } as any)).toBeNull();
  });
});

describe('readAtText and walltimeText', () => {
  it('says when figures were read, or that they were not yet', () => {
    expect(readAtText(undefined, trans)).toBe('not read yet');
    expect(readAtText('2026-12-04T09:00:00Z', trans)).toMatch(/^read \S/);
  });
  it('writes a walltime as Slurm does', () => {
    expect(walltimeText(5400)).toBe('01:30:00');
    expect(walltimeText(86400)).toBe('24:00:00');
  });
});
