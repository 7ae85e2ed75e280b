/**
 * How long this server's job has left: the status bar item "Alpha: 2 h 14 min left", and a
 * warning at 15 and at 5 minutes (a JupyterLab notification; also the browser's own notification
 * when the tab is in the background and the user allowed it). The end comes from the hub, which
 * reads it from Slurm, so an operator's change to the job's limit shows at the next read.
 */
import { Notification } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { dueWarning, durationText, timeLeftText, WARN_AT_MINUTES } from './countdown';
import { requestAPI } from './request';

export interface ITimeLeft {
  centre: string;
  centre_name: string;
  job_id: string;
  ends: string;
  seconds_left: number;
  extendable_s: number | null;
  extend_step_s: number | null;
}

/** The hub's word on this server's end, read every minute and counted down between reads. */
export class TimeLeftModel {
  constructor(readEverySeconds = 60) {
    this._poll = new Poll({
      factory: () => this._read(),
      frequency: { interval: readEverySeconds * 1000, backoff: true, max: 300 * 1000 },
      name: 'fedhub-lab:time-left',
      standby: 'never'
    });
    this._tick = window.setInterval(() => this._changed.emit(), 15 * 1000);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** null until the hub has answered, or when this server has no job the hub knows. */
  get current(): ITimeLeft | null {
    return this._current;
  }

  /** Seconds left now, counted from the end the hub gave. */
  /** Seconds the centre still lets the hub add to this job in one step (0: it may not). */
  get extendStep(): number {
    const c = this._current;
    return c && c.extendable_s ? Math.min(c.extendable_s, c.extend_step_s ?? c.extendable_s) : 0;
  }

  /** Read the hub's word now (after an extension). */
  async refreshNow(): Promise<void> {
    await this._poll.refresh();
    await this._poll.tick;
  }

  get secondsLeft(): number | null {
    return this._current ? Math.max(0, (Date.parse(this._current.ends) - Date.now()) / 1000) : null;
  }

  dispose(): void {
    this._poll.dispose();
    window.clearInterval(this._tick);
  }

  private async _read(): Promise<void> {
    const response = await requestAPI('time-left');
    if (response.status === 404) {
      this._current = null;
    } else if (response.ok) {
      const answer = (await response.json()) as ITimeLeft;
      // the server's clock may differ from the browser's: keep the hub's seconds, not its clock
      this._current = { ...answer, ends: new Date(Date.now() + answer.seconds_left * 1000).toISOString() };
    } else {
      throw new Error(`time-left: the server answered ${response.status}`); // the poll backs off
    }
    this._changed.emit();
  }

  private _current: ITimeLeft | null = null;
  private _changed = new Signal<this, void>(this);
  private _poll: Poll;
  private _tick: number;
}

export class TimeLeftStatus extends Widget {
  constructor(model: TimeLeftModel, trans: TranslationBundle, onClick: () => void = () => undefined) {
    super();
    this.id = 'fedhub-time-left';
    this.addClass('fedhub-time-left');
    this.addClass('jp-mod-highlighted');
    this.node.addEventListener('click', onClick);
    this._model = model;
    this._trans = trans;
    model.changed.connect(this.update, this);
    this.update();
  }

  get isActive(): boolean {
    return this._model.current !== null;
  }

  update(): void {
    const current = this._model.current;
    const seconds = this._model.secondsLeft;
    if (!current || seconds === null) {
      this.node.textContent = '';
      return;
    }
    const name = current.centre_name || current.centre;
    this.node.textContent = this._trans.__('%1: %2', name, timeLeftText(seconds, this._trans));
    this.node.title = this._trans.__(
      'Job %1 at %2 ends at %3 (its walltime). Click to continue at another centre.',
      current.job_id,
      name,
      new Date(current.ends).toLocaleTimeString()
    );
    this.node.classList.toggle('fedhub-ending', seconds <= WARN_AT_MINUTES[0] * 60);
  }

  private _model: TimeLeftModel;
  private _trans: TranslationBundle;
}

/** Warn once at each threshold the countdown reaches (once per job, across reloads of the page),
 * with the way out: ``moveOn`` continues the session at another centre; ``saveAll`` saves the
 * open documents at each warning (the hub saves the kernels' variables before the end). */
export function warnBeforeTheEnd(
  model: TimeLeftModel,
  trans: TranslationBundle,
  moveOn?: () => void,
  saveAll?: () => void,
  extend?: () => void
): void {
  model.changed.connect(() => {
    const current = model.current;
    const seconds = model.secondsLeft;
    if (!current || seconds === null) {
      return;
    }
    const key = `fedhub-lab:time-left-warned:${current.centre}:${current.job_id}`;
    const warned = new Set<number>(JSON.parse(window.sessionStorage.getItem(key) ?? '[]'));
    const at = dueWarning(seconds, warned);
    if (at === null) {
      return;
    }
    WARN_AT_MINUTES.filter(m => m >= at).forEach(m => warned.add(m));
    saveAll?.();
    window.sessionStorage.setItem(key, JSON.stringify([...warned]));
    const name = current.centre_name || current.centre;
    const text = trans.__(
      'Your server at %1 ends in %2 (its job reaches its walltime). Your notebooks were saved; continue at another centre to keep working with your kernels, or restore them at your next start.',
      name,
      durationText(seconds, trans)
    );
    const browser = 'Notification' in window ? window.Notification : null;
    // the browser's own notifications need the user's leave once: offered in the first warning
    const actions = [];
    if (extend && model.extendStep > 0) {
      const minutes = Math.round(model.extendStep / 60);
      actions.push({ label: trans._n('Extend by %1 min', 'Extend by %1 min', minutes), callback: extend });
    }
    if (moveOn) {
      actions.push({ label: trans.__('Continue at another centre…'), callback: moveOn });
    }
    if (browser?.permission === 'default') {
      actions.push({
        label: trans.__('Also tell me when this tab is in the background'),
        callback: () => void browser.requestPermission()
      });
    }
    Notification.warning(text, { autoClose: false, actions });
    if (document.hidden && browser?.permission === 'granted') {
      new browser(trans.__('FedHub: your server at %1 is ending', name), { body: text });
    }
  });
}
