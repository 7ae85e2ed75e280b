/**
 * Warn, once per level, when the allocation at this server's centre crosses the hub's
 * thresholds (JupyterLab notifications), so a user learns it before jobs are refused.
 */
import { Notification } from '@jupyterlab/apputils';

import { hours } from './format';
import { Level, QuotaModel } from './model';

const RANK: Record<Level, number> = { ok: 0, warn: 1, critical: 2, 'used-up': 3 };

export function watchThresholds(model: QuotaModel): void {
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
        ? `Your allocation at ${where} is used up: new servers there will be refused. Choose another centre.`
        : `You have used ${pct}% of your allocation at ${where}: ${hours(entry.core_hours?.remaining)} core-h left this period.`;
    const notify = level === 'warn' ? Notification.warning : Notification.error;
    notify(text, { autoClose: false });
  });
}
