/**
 * The countdown's words and when it warns: through JupyterLab's real translator, as the lab shows them.
 */
import { nullTranslator } from '@jupyterlab/translation';

import { dueWarning, durationText, timeLeftText } from '../src/countdown';

const trans = nullTranslator.load('fedhub_lab');

describe('time left', () => {
  it('reads in hours and minutes, then minutes, then less than a minute', () => {
    expect(timeLeftText(2 * 3600 + 14 * 60 + 59, trans)).toBe('2 h 14 min left');
    expect(timeLeftText(14 * 60 + 5, trans)).toBe('14 min left');
    expect(timeLeftText(59, trans)).toBe('less than a minute left');
    expect(durationText(3600, trans)).toBe('1 h 0 min');
  });

  it('warns once at 15 and once at 5 minutes, the nearest one first when a page opens late', () => {
    const warned = new Set<number>();
    expect(dueWarning(16 * 60, warned)).toBeNull();
    expect(dueWarning(15 * 60, warned)).toBe(15);
    warned.add(15);
    expect(dueWarning(10 * 60, warned)).toBeNull();
    expect(dueWarning(5 * 60 - 1, warned)).toBe(5);
    expect(dueWarning(4 * 60, new Set())).toBe(5); // opened with 4 min left: the 5-minute warning
  });
});
