/**
 * Warn, once per level, when the allocation at this server's centre crosses the hub's
 * thresholds (JupyterLab notifications), so a user learns it before jobs are refused.
 */
import { Notification } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';

import { hours } from './format';
import { Level, QuotaModel } from './model';

const RANK: Record<Level, number> = { ok: 0, warn: 1, critical: 2, 'used-up': 3 };

export function watchThresholds(model: QuotaModel, trans: TranslationBundle): void {
  let warned: Level = 'ok';
  model.changed.connect(() => {
    const state = model.state;
    const entry = model.current;
    if (state.kind !== 'figures' || !entry?.level) {
      return;
    }
    const level = entry.level;
    if (RANK[level] <= RANK[warned]) {
      warned = RANK[level] < RANK[warned] ? level : warned; // a new period or a raised limit
      return;
    }
    warned = level;
    const where = state.envelope.centre_name || state.envelope.centre;
    const pct = Math.round(entry.core_hours?.percent ?? 100);
    const text =
      level === 'used-up'
        ? trans.__('Your allocation at %1 is used up: new servers there will be refused. Choose another centre.', where)
        : trans.__(
            'You have used %1%% of your allocation at %2: %3 core-h left this period.',
            pct,
            where,
            hours(entry.core_hours?.remaining)
          );
    const notify = level === 'warn' ? Notification.warning : Notification.error;
    notify(text, { autoClose: false });
  });
}
